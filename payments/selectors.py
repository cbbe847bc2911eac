"""Payments read services. Every selector that takes a merchant scopes to that merchant and mode, so another
merchant's (or mode's) object is indistinguishable from one that does not exist (NotFound, HTTP 404)."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from config.platform.merchants.models import Merchant
from payments.contracts import EventRecord
from payments.errors import NotFound
from payments.events import event_record
from payments.models import Event, Payment, PaymentStatus, Refund


def payment_list(*, merchant: Merchant, mode: str) -> QuerySet[Payment]:
    """The merchant's payments in `mode` (unordered; callers page by id), with their settlement holds prefetched."""
    return Payment.objects.filter(merchant=merchant, mode=mode).prefetch_related("settlement_holds")


def payment_get(*, merchant: Merchant, mode: str, payment_id: str) -> Payment:
    """One of the merchant's payments. Raises NotFound for unknown ids and for other merchants' or modes' ids."""
    payment = Payment.objects.filter(pk=payment_id, merchant=merchant, mode=mode).first()
    if payment is None:
        raise NotFound(f"No such payment: {payment_id}", param="id")
    return payment


def payment_ids_due_for_expiry(*, now: datetime, limit: int) -> list[str]:
    """Ids of `authorized` payments whose `expires_at` is at or before `now`, oldest first (at most `limit`)."""
    return list(
        Payment.objects.filter(status=PaymentStatus.AUTHORIZED, expires_at__lte=now)
        .order_by("expires_at")
        .values_list("id", flat=True)[:limit]
    )


def refund_list(*, merchant: Merchant, mode: str, payment_id: str | None = None) -> QuerySet[Refund]:
    """The merchant's refunds in `mode`, optionally only those of one payment (unordered; callers page by id)."""
    qs = Refund.objects.filter(merchant=merchant, mode=mode)
    if payment_id is not None:
        qs = qs.filter(payment_id=payment_id)
    return qs


def refund_get(*, merchant: Merchant, mode: str, refund_id: str) -> Refund:
    """One of the merchant's refunds. Raises NotFound for unknown ids and for other merchants' or modes' ids."""
    refund = Refund.objects.filter(pk=refund_id, merchant=merchant, mode=mode).first()
    if refund is None:
        raise NotFound(f"No such refund: {refund_id}", param="id")
    return refund


def event_list(*, merchant: Merchant, mode: str, type: str | None = None) -> QuerySet[Event]:
    """The merchant's events in `mode` (unordered; callers page by id).

    `type` filters by an exact event type (`payment.captured`) or a family (`payment.*`, `refund.*`).
    """
    qs = Event.objects.filter(merchant=merchant, mode=mode)
    if type:
        qs = qs.filter(type__startswith=type[:-1]) if type.endswith(".*") else qs.filter(type=type)
    return qs


def event_get(*, merchant: Merchant, mode: str, event_id: str) -> Event:
    """One of the merchant's events. Raises NotFound for unknown ids and for other merchants' or modes' ids."""
    event = Event.objects.filter(pk=event_id, merchant=merchant, mode=mode).first()
    if event is None:
        raise NotFound(f"No such event: {event_id}", param="id")
    return event


def event_get_for_delivery(*, event_id: str) -> EventRecord:
    """One event, of any merchant, as its contract: for the apps that deliver events (webhooks), which use its
    `merchant_id` and `mode` to find the merchant's endpoints. Raises NotFound for an unknown id."""
    event = Event.objects.filter(pk=event_id).first()
    if event is None:
        raise NotFound(f"No such event: {event_id}", param="id")
    return event_record(event)
