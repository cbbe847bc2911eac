"""Outbox subscribers of the webhooks app: fan events out to endpoints, deliver each delivery."""

from __future__ import annotations

import time

import requests
import structlog

from config.platform.outbox import engine as outbox
from payments.events import PUBLIC_EVENT_TYPES, event_record_to_dict
from payments.selectors import event_get_for_delivery
from webhooks import delivery as transport
from webhooks import services
from webhooks.models import DeliveryStatus, WebhookDelivery

log = structlog.get_logger(__name__)


class DeliveryFailed(Exception):
    """The endpoint did not answer 2xx; the outbox retries with backoff (WEBHOOKS_* settings)."""


@outbox.subscriber("webhooks.fanout", topics=PUBLIC_EVENT_TYPES)
def fanout(message: outbox.Message) -> None:
    """Create the event's deliveries, one per subscribed endpoint (idempotent)."""
    services.event_fanout(event_id=message.payload["event_id"])


@outbox.subscriber(
    "webhooks.deliver", topics=[services.DELIVER_TOPIC], policy=outbox.RetryPolicy(settings_prefix="WEBHOOKS")
)
def deliver(message: outbox.Message) -> None:
    """POST one delivery, record the attempt, and raise DeliveryFailed on a non-2xx answer or transport error."""
    delivery = WebhookDelivery.objects.select_related("endpoint").get(pk=message.payload["delivery_id"])
    if delivery.status != DeliveryStatus.PENDING:
        return
    endpoint, event = delivery.endpoint, event_get_for_delivery(event_id=delivery.event_id)
    signed = transport.sign(secret=endpoint.secret, message_id=event.id, payload=event_record_to_dict(event))
    started = time.monotonic()
    status: int | None = None
    body = error = ""
    try:
        response = transport.send(endpoint.url, signed)
        status, body = response.status_code, response.text[:1000]
    except requests.RequestException as exc:
        error = f"{type(exc).__name__}: {exc}"
    duration_ms = int((time.monotonic() - started) * 1000)
    succeeded = status is not None and 200 <= status < 300
    services.attempt_record(
        delivery_id=delivery.id,
        response_status=status,
        response_body=body,
        error=error,
        duration_ms=duration_ms,
        final=message.is_last_attempt,
    )
    log.info(
        "webhooks.attempt",
        delivery_id=delivery.id,
        endpoint_id=endpoint.id,
        event_type=event.type,
        status=status,
        error=error or None,
        duration_ms=duration_ms,
    )
    if not succeeded:
        raise DeliveryFailed(error or f"endpoint answered {status}")
