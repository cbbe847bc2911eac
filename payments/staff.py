"""What finance staff do from the admin, as use cases: each goes through the same payments service as the API,
writes an audit record (staff user + typed reason) and commits both in one durable transaction.

- payment_void_by_staff (`payments.void_payment`, checked by the admin): services.payment_void → `voiding`; the
  worker voids at the processor, posts `void_release` and emits `payment.voided`.
- held_payment_void_by_staff (`payments.void_payment`): the same, and the active hold becomes `voided`.
- settlement_hold_release_by_staff (`payments.release_hold`): settlement_holds.settlement_hold_release
  (`payment.hold_released`).
- outbox_replay_by_staff (`payments.replay_outbox`): outbox.replay (a dead letter is due again, attempts reset).
"""

from __future__ import annotations

from django.db import transaction

from config.platform.actors import Actor, clean_reason
from config.platform.outbox import engine as outbox
from config.platform.outbox.models import OutboxMessage
from payments import services, settlement_holds
from payments.audit import audit_record_write
from payments.errors import InvalidState, NotFound
from payments.models import Payment, SettlementHold

#: The void reasons the API accepts (payments.api.serializers.PaymentVoidSerializer), shown in the admin's form.
VOID_REASONS = ("requested_by_customer", "duplicate", "fraudulent", "abandoned")


def _payment(payment_id: str) -> Payment:
    payment = Payment.objects.select_related("merchant").filter(pk=payment_id).first()
    if payment is None:
        raise NotFound(f"No such payment: {payment_id}", param="id")
    return payment


@transaction.atomic(durable=True)
def payment_void_by_staff(*, payment_id: str, actor: Actor, reason: str, void_reason: str = "") -> Payment:
    """Void an authorized payment on behalf of its merchant: `voiding` now, `voided` once the processor agrees.

    `reason` is the staff user's typed justification (audit); `void_reason` one of VOID_REASONS (or empty), as in
    the API. Raises NotFound, InvalidState unless `authorized`, ReasonRequired; nothing is written then.
    """
    reason = clean_reason(reason)
    payment = _payment(payment_id)
    payment = services.payment_void(
        merchant=payment.merchant, mode=payment.mode, payment_id=payment.pk, reason=void_reason
    )
    audit_record_write(
        actor=actor,
        action="payment.void",
        object_type="payment",
        object_id=payment.pk,
        payment_id=payment.pk,
        reason=reason,
        data={"void_reason": void_reason},
    )
    return payment


@transaction.atomic(durable=True)
def held_payment_void_by_staff(
    *, payment_id: str, actor: Actor, reason: str, void_reason: str = "fraudulent"
) -> tuple[Payment, SettlementHold]:
    """Void a held, authorized payment from the hold queue: the void as in payment_void_by_staff, and the active
    hold becomes `voided` (the payment never settles). One audit record. Raises NotFound, NotHeld (no active
    hold), InvalidState unless `authorized`, ReasonRequired; nothing is written then.
    """
    reason = clean_reason(reason)
    payment = _payment(payment_id)
    payment = services.payment_void(
        merchant=payment.merchant, mode=payment.mode, payment_id=payment.pk, reason=void_reason
    )
    hold = settlement_holds.settlement_hold_end_by_void(payment_id=payment.pk, actor=actor, reason=reason)
    audit_record_write(
        actor=actor,
        action="payment.held_void",
        object_type="payment",
        object_id=payment.pk,
        payment_id=payment.pk,
        reason=reason,
        data={"void_reason": void_reason, "hold_id": hold.pk},
    )
    return payment, hold


@transaction.atomic(durable=True)
def settlement_hold_release_by_staff(*, payment_id: str, actor: Actor, reason: str) -> SettlementHold:
    """Release a payment's active hold (settlement_holds.settlement_hold_release, which writes the audit record).

    Raises NotFound, NotHeld, ReasonRequired.
    """
    return settlement_holds.settlement_hold_release(payment_id=payment_id, actor=actor, reason=reason)


@transaction.atomic(durable=True)
def outbox_replay_by_staff(*, message_id: int, actor: Actor, reason: str) -> OutboxMessage:
    """Put a dead-lettered outbox row back to work (due now, attempts reset) and audit it.

    Raises NotFound for an unknown row, InvalidState when it is not `dead`, ReasonRequired.
    """
    reason = clean_reason(reason)
    message = OutboxMessage.objects.select_for_update().filter(pk=message_id).first()
    if message is None:
        raise NotFound(f"No such outbox message: {message_id}", param="id")
    if not outbox.replay(message_id=message.pk):
        raise InvalidState(f"Outbox message {message_id} is {message.status}, not dead.")
    payment_id = message.key if Payment.objects.filter(pk=message.key).exists() else None
    audit_record_write(
        actor=actor,
        action="outbox.replay",
        object_type="outbox_message",
        object_id=str(message.pk),
        payment_id=payment_id,
        reason=reason,
        data={"topic": message.topic, "subscriber": message.subscriber, "last_error": message.last_error[:500]},
    )
    message.refresh_from_db()
    return message
