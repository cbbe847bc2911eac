"""Payment event types, emitting events (an Event row plus its outbox rows), their contract and their JSON form.

Public events (`payment.*`, `refund.*`) go to merchants through webhooks and `GET /v1/events`. The worker's
internal work orders (`payments.*` topics) are not events: they live in payments.commands. Every committed event
also wakes requests waiting on its object (`Prefer: wait`, config.platform.http.waiting).
"""

from __future__ import annotations

from typing import Any

from config.platform.http import waiting
from config.platform.http.rendering import iso
from config.platform.outbox import engine as outbox
from payments.contracts import EventRecord
from payments.models import Event, Payment, Refund
from payments.representations import payment_to_dict, refund_to_dict

PAYMENT_CREATED = "payment.created"
PAYMENT_AUTHORIZED = "payment.authorized"
PAYMENT_CAPTURED = "payment.captured"
PAYMENT_CAPTURE_FAILED = "payment.capture_failed"
PAYMENT_FAILED = "payment.failed"
PAYMENT_VOIDED = "payment.voided"
PAYMENT_VOID_FAILED = "payment.void_failed"
PAYMENT_EXPIRED = "payment.expired"
PAYMENT_PARTIALLY_REFUNDED = "payment.partially_refunded"
PAYMENT_REFUNDED = "payment.refunded"
REFUND_CREATED = "refund.created"
REFUND_SUCCEEDED = "refund.succeeded"
REFUND_FAILED = "refund.failed"

#: Every event type a merchant can receive, with when it happens.
PUBLIC_EVENT_TYPES: dict[str, str] = {
    PAYMENT_CREATED: "A payment was accepted and is being authorized.",
    PAYMENT_AUTHORIZED: "The processor approved the authorization; the amount is held on the card.",
    PAYMENT_CAPTURED: "The payment was captured; funds will settle to the merchant's balance.",
    PAYMENT_CAPTURE_FAILED: "The processor refused the capture; the payment is authorized again.",
    PAYMENT_FAILED: "The authorization was declined or could not be completed.",
    PAYMENT_VOIDED: "The authorization was voided and the hold released.",
    PAYMENT_VOID_FAILED: "The processor refused the void; the payment is authorized again.",
    PAYMENT_EXPIRED: "The authorization was not captured in time (7 days by default); the hold was released.",
    PAYMENT_PARTIALLY_REFUNDED: "A refund succeeded; part of the captured amount is refunded.",
    PAYMENT_REFUNDED: "Refunds succeeded for the whole captured amount.",
    REFUND_CREATED: "A refund was requested and is pending at the processor.",
    REFUND_SUCCEEDED: "The processor accepted the refund.",
    REFUND_FAILED: "The processor refused the refund, or could not be reached; nothing was refunded.",
}

PAYMENT_HELD = "payment.held"
PAYMENT_HOLD_RELEASED = "payment.hold_released"
PUBLIC_EVENT_TYPES[PAYMENT_HELD] = "The payment was put on hold for review; it will not settle until released."
PUBLIC_EVENT_TYPES[PAYMENT_HOLD_RELEASED] = "A reviewer released the payment's hold; it settles normally."


def event_emit(*, type: str, payment: Payment, refund: Refund | None = None) -> Event:
    """Record event `type` about `payment`, or about `refund` of that payment, with the object's current API form
    as `data.object`, and publish it to subscribers (ordered by payment id).

    Must run inside the transaction that made the change; after commit, requests waiting on the object
    (`Prefer: wait`) are woken. Returns the event: its `data["object"]` is the object's API form, which the
    service may return as the answer's body (config.platform.http.rendering). Raises ValueError for an unknown
    event type.
    """
    if type not in PUBLIC_EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}")
    obj = refund_to_dict(refund) if refund is not None else payment_to_dict(payment)
    event = Event.objects.create(
        merchant_id=payment.merchant_id,
        mode=payment.mode,
        type=type,
        payment=payment,
        data={"object": obj},
        request_id=outbox.current_request_id(),
    )
    payload = {"event_id": event.id, "payment_id": payment.id}
    if refund is not None:
        payload["refund_id"] = refund.id
    outbox.publish(type, key=payment.id, payload=payload)
    waiting.notify_after_commit(refund.id if refund is not None else payment.id)
    return event


def event_record(event: Event) -> EventRecord:
    """The stored event as its contract (payments.contracts.EventRecord)."""
    return EventRecord(
        id=event.id,
        type=event.type,
        merchant_id=event.merchant_id,
        mode=event.mode,
        created_at=event.created_at,
        request_id=event.request_id,
        data_object=event.data["object"],
    )


def event_record_to_dict(record: EventRecord) -> dict[str, Any]:
    """The event as merchants see it (`GET /v1/events` and the webhook body): id, type, created, livemode,
    request_id, data.object. Pure: depends on `record` only."""
    return {
        "id": record.id,
        "object": "event",
        "type": record.type,
        "created": iso(record.created_at),
        "livemode": record.livemode,
        "request_id": record.request_id or None,
        "data": {"object": record.data_object},
    }
