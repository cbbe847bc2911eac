"""What reconciliation may know about payments and refunds to settle them: plain contracts
and selectors. Reconciliation posts the settlement itself (ledger.services) under the row locks taken here.

Settlement eligibility is decided by payments, which owns the payment and its settlement holds
(`SettlementPayment`): a payment settles when it was captured, is not voided, and none of its settlement holds is
still in force.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Exists, OuterRef, QuerySet

from payments.ledger_refs import payment_reference
from payments.models import Payment, PaymentStatus, Refund, RefundStatus, SettlementHold, SettlementHoldStatus

_VOIDED = (PaymentStatus.VOIDING, PaymentStatus.VOIDED)


@dataclass(frozen=True, kw_only=True)
class SettlementPayment:
    """A payment as reconciliation sees it. Amounts in minor units of `currency`.

    `held`: some settlement hold is not `released` (active, or ended by voiding the payment): it must not settle.
    `voided`: `voiding` or `voided`. `captured`: money was captured (`amount_captured` > 0).
    """

    payment_id: str
    merchant_id: str
    mode: str
    status: str
    currency: str
    amount: int
    amount_captured: int
    psp_reference: str
    capture_psp_reference: str
    captured_at: dt.datetime | None
    held: bool

    @property
    def voided(self) -> bool:
        """True while voiding and once voided."""
        return self.status in _VOIDED

    @property
    def captured(self) -> bool:
        """True once a capture was recorded (also after later refunds)."""
        return self.amount_captured > 0 and self.captured_at is not None

    @property
    def ledger_reference(self) -> str:
        """The reference of the payment's ledger transactions (payments.ledger_refs.payment_reference)."""
        return payment_reference(self.payment_id)


@dataclass(frozen=True, kw_only=True)
class SettlementRefund:
    """A refund as reconciliation sees it: `psp_reference` is the refund's own (the report's Modification
    Reference), `payment_psp_reference` the authorization's. `amount` in minor units of `currency`."""

    refund_id: str
    payment_id: str
    merchant_id: str
    mode: str
    status: str
    amount: int
    currency: str
    psp_reference: str
    payment_psp_reference: str
    succeeded: bool


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
