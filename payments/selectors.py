"""Payments read services, for the API and for the apps that read payments (fraud, reconciliation, webhooks).

Every selector that takes a merchant scopes to that merchant and mode, so another merchant's (or mode's) object is
indistinguishable from one that does not exist (NotFound, HTTP 404). The selectors for other apps return
contracts (payments.contracts), never models: the risk facts of a payment, the payments and refunds a settlement
report names (locked while reconciliation settles them, so a concurrent settlement hold is either seen or placed
after the settlement), and an event to deliver.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from datetime import datetime

from django.db.models import Exists, OuterRef, QuerySet

from config.platform.merchants.models import Merchant
from payments.contracts import EventRecord, PaymentRiskFacts, SettlementPayment, SettlementRefund
from payments.errors import NotFound
from payments.events import event_record
from payments.models import Event, Payment, PaymentStatus, Refund, RefundStatus, SettlementHold, SettlementHoldStatus


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


# --- For fraud: the risk facts of a payment ----------------------------------------------------------------


def payment_risk_facts(*, payment_id: str) -> PaymentRiskFacts:
    """The facts of one payment (any merchant: for internal reviewers only). Raises NotFound."""
    payment = Payment.objects.filter(pk=payment_id).first()
    if payment is None:
        raise NotFound(f"No such payment: {payment_id}", param="id")
    return PaymentRiskFacts(
        payment_id=payment.pk,
        merchant_id=payment.merchant_id,
        mode=payment.mode,
        status=payment.status,
        amount=payment.amount,
        currency=payment.currency,
        card_bin=payment.card_bin,
        card_country=payment.card_country.upper(),
        card_fingerprint=payment.card_fingerprint,
        customer_email=payment.customer_email.strip().lower(),
        customer_ip=payment.customer_ip or None,
        authorized_at=payment.authorized_at or payment.created_at,
    )


# --- For reconciliation: payments and refunds to settle ------------------------------------------------------


def _held() -> Exists:
    return Exists(SettlementHold.objects.filter(payment=OuterRef("pk")).exclude(status=SettlementHoldStatus.RELEASED))


def _view(payment: Payment) -> SettlementPayment:
    return SettlementPayment(
        payment_id=payment.pk,
        merchant_id=payment.merchant_id,
        mode=payment.mode,
        status=payment.status,
        currency=payment.currency,
        amount=payment.amount,
        amount_captured=payment.amount_captured,
        psp_reference=payment.psp_reference,
        capture_psp_reference=payment.capture_psp_reference,
        captured_at=payment.captured_at,
        held=bool(getattr(payment, "is_held", False)),
    )


def _payments(processor: str) -> QuerySet[Payment]:
    return Payment.objects.filter(processor=processor).exclude(psp_reference="")


def payments_lock_for_settlement(*, processor: str, psp_references: Iterable[str]) -> dict[str, SettlementPayment]:
    """Lock (`SELECT … FOR UPDATE`, in id order) the payments of `processor` with these authorization PSP
    references and return them keyed by PSP reference. Call inside the transaction that settles them: a hold
    placed concurrently (payments.settlement_holds locks the same row) then lands either before (and is seen here) or
    after the settlement. Raises TransactionManagementError outside a transaction.
    """
    refs = sorted({r for r in psp_references if r})
    if not refs:
        return {}
    ids = list(_payments(processor).filter(psp_reference__in=refs).order_by("pk").values_list("pk", flat=True))
    locked = list(Payment.objects.select_for_update().filter(pk__in=ids).order_by("pk"))
    held = set(
        Payment.objects.filter(pk__in=ids).annotate(is_held=_held()).filter(is_held=True).values_list("pk", flat=True)
    )
    result: dict[str, SettlementPayment] = {}
    for payment in locked:
        payment.is_held = payment.pk in held  # type: ignore[attr-defined]
        result[payment.psp_reference] = _view(payment)
    return result


def payments_captured_between(*, processor: str, start: dt.datetime, end: dt.datetime) -> list[SettlementPayment]:
    """Payments of `processor` whose capture was recorded in [start, end), oldest first (no locks)."""
    qs = (
        _payments(processor)
        .filter(amount_captured__gt=0, captured_at__gte=start, captured_at__lt=end)
        .annotate(is_held=_held())
        .order_by("captured_at", "pk")
    )
    return [_view(p) for p in qs]


def refunds_for_settlement(*, processor: str, psp_references: Iterable[str]) -> dict[str, SettlementRefund]:
    """The refunds of `processor`'s payments with these refund PSP references (a settlement report's
    Modification Reference of `Refunded` rows), keyed by that reference. No locks: a refund's booking is keyed
    by its id, so a re-run books nothing twice. Refunds that never got a PSP reference cannot match.
    """
    refs = sorted({r for r in psp_references if r})
    if not refs:
        return {}
    refunds = Refund.objects.select_related("payment").filter(payment__processor=processor, psp_reference__in=refs)
    return {
        refund.psp_reference: SettlementRefund(
            refund_id=refund.pk,
            payment_id=refund.payment_id,
            merchant_id=refund.payment.merchant_id,
            mode=refund.mode,
            status=refund.status,
            amount=refund.amount,
            currency=refund.currency,
            psp_reference=refund.psp_reference,
            payment_psp_reference=refund.payment.psp_reference,
            succeeded=refund.status == RefundStatus.SUCCEEDED,
        )
        for refund in refunds
    }
