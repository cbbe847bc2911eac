"""Settlement holds: a payment under review does not settle until a person releases it.

Other apps put settlement holds through these services and never write the table themselves (fraud places one
when a payment scores at or above its threshold). A settlement hold is about settlement, not about the card (the
issuer's authorization hold) nor the ledger (its pending transactions): a held payment is still authorized or
captured as usual, but reconciliation (reconciliation.services) never moves its money from the merchant's
pending to their available balance while any of its settlement holds is not `released`.

| service | does | event |
|---|---|---|
| settlement_hold_place | opens an `active` hold (idempotent: an active hold is returned as is) | `payment.held` |
| settlement_hold_release | a staff user releases the active hold, with a reason (audited) | `payment.hold_released` |
| settlement_hold_end_by_void | the held payment is being voided: the hold becomes `voided` (audited) | — |
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from config.platform.actors import Actor, clean_reason
from payments import events
from payments.audit import audit_record_write
from payments.errors import NotFound, NotHeld
from payments.models import Payment, SettlementHold, SettlementHoldStatus


def _lock(payment_id: str) -> Payment:
    payment = Payment.objects.select_for_update().filter(pk=payment_id).first()
    if payment is None:
        raise NotFound(f"No such payment: {payment_id}", param="id")
    return payment


def settlement_hold_active(*, payment_id: str) -> SettlementHold | None:
    """The payment's `active` hold, or None (selector)."""
    return SettlementHold.objects.filter(payment_id=payment_id, status=SettlementHoldStatus.ACTIVE).first()


@transaction.atomic
def settlement_hold_place(
    *, payment_id: str, reason: str, source: str, note: str = "", details: dict[str, Any] | None = None
) -> SettlementHold:
    """Put a payment on hold and emit `payment.held` (with the payment, now showing its hold).

    `reason` is a short stable code merchants see (`fraud_review`); `source` names the placing app (`fraud`);
    `note` (≤ 1000 characters) and `details` (JSON: the evidence, e.g. fired rules) are for staff.
    Locks the payment row. Idempotent: when the payment already has an active hold, that hold is returned and
    nothing is written. Joins the caller's transaction, so a caller can record its own result atomically with
    the hold. Raises NotFound for an unknown payment.
    """
    payment = _lock(payment_id)
    existing = settlement_hold_active(payment_id=payment.pk)
    if existing is not None:
        return existing
    hold = SettlementHold.objects.create(
        payment=payment, reason=reason, source=source, note=note[:1000], details=details or {}
    )
    events.event_emit(type=events.PAYMENT_HELD, payment=payment)
    return hold


@transaction.atomic
def settlement_hold_release(*, payment_id: str, actor: Actor, reason: str) -> SettlementHold:
    """Release the payment's active hold (a person decided it is fine): it settles at the next reconciliation.

    Writes an audit record (actor, typed `reason`) and emits `payment.hold_released`, in one transaction with the
    change. Locks the payment row. Raises NotFound, NotHeld when there is no active hold, ReasonRequired for an
    empty reason.
    """
    reason = clean_reason(reason)
    payment = _lock(payment_id)
    hold = settlement_hold_active(payment_id=payment.pk)
    if hold is None:
        raise NotHeld(f"Payment {payment.pk} has no active hold.")
    _end(hold, status=SettlementHoldStatus.RELEASED, actor=actor, reason=reason)
    audit_record_write(
        actor=actor,
        action="payment.hold_release",
        object_type="payment_hold",  # stored in audit records since before the rename: stays
        object_id=hold.pk,
        payment_id=payment.pk,
        reason=reason,
        data={"hold_reason": hold.reason, "source": hold.source},
    )
    events.event_emit(type=events.PAYMENT_HOLD_RELEASED, payment=payment)
    return hold


@transaction.atomic
def settlement_hold_end_by_void(*, payment_id: str, actor: Actor, reason: str) -> SettlementHold:
    """Mark the active hold `voided` because a person is voiding the held payment (payments.staff does both in one
    transaction). The payment stays unsettleable: only `released` ends that. Audited by the caller's void record.

    Locks the payment row. Raises NotFound, NotHeld when there is no active hold, ReasonRequired.
    """
    reason = clean_reason(reason)
    payment = _lock(payment_id)
    hold = settlement_hold_active(payment_id=payment.pk)
    if hold is None:
        raise NotHeld(f"Payment {payment.pk} has no active hold.")
    _end(hold, status=SettlementHoldStatus.VOIDED, actor=actor, reason=reason)
    return hold


def _end(hold: SettlementHold, *, status: str, actor: Actor, reason: str) -> None:
    hold.status = status
    hold.ended_at = timezone.now()
    hold.ended_by = actor.username
    hold.end_reason = reason
    hold.save(update_fields=["status", "ended_at", "ended_by", "end_reason"])
