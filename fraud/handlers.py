"""Outbox subscriber of the fraud app: score every authorized payment, off the request path."""

from __future__ import annotations

from config.platform.outbox import engine as outbox
from fraud import services
from payments import events

SUBSCRIBER = "fraud.score"


@outbox.subscriber(SUBSCRIBER, topics=[events.PAYMENT_AUTHORIZED])
def score(message: outbox.Message) -> None:
    """Score the payment of a `payment.authorized` event (idempotent; Redis errors raise and are retried)."""
    services.payment_score(payment_id=message.payload["payment_id"], event_id=message.payload.get("event_id", ""))
