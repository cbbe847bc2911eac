"""Payments write services (use cases). Each owns its database transaction and writes its events in it.

Every state change locks the payment row (`SELECT … FOR UPDATE`), applies one django-fsm-2 transition of
Payment (or Refund), writes the new state, its ledger postings and its events (outbox rows) in one transaction,
so they all commit or none do. A transition from the wrong state raises InvalidState (HTTP 409). No service
called from an API request talks to a processor: that happens in the outbox worker (payments.handlers).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_fsm import TransitionNotAllowed

from config.platform.http.rendering import Rendered
from config.platform.merchants.models import Merchant
from config.platform.outbox import engine as outbox
from payments import commands, events, postings
from payments.errors import InvalidAmount, InvalidState, NotFound
from payments.models import CaptureMethod, Payment, PaymentStatus, Refund, RefundStatus, SettlementHold
from payments.processors.base import AuthorizationResult


def _transitions() -> dict[str, set[str]]:
    table: dict[str, set[str]] = {}
    for t in Payment._meta.get_field("status").get_all_transitions(Payment):
        if t.target is None:
            continue
        targets = t.target.allowed_states if hasattr(t.target, "allowed_states") else [t.target]
        table.setdefault(t.source, set()).update(targets)
    return table


#: Allowed payment status changes (from → to), read from the django-fsm-2 transitions of Payment.
TRANSITIONS: dict[str, set[str]] = _transitions()


def _lock(*, payment_id: str, merchant_id: str | None = None, mode: str | None = None) -> Payment:
    qs = Payment.objects.select_for_update().filter(pk=payment_id)
    if merchant_id is not None:
        qs = qs.filter(merchant_id=merchant_id, mode=mode)
    payment = qs.first()
    if payment is None:
        raise NotFound(f"No such payment: {payment_id}", param="id")
    return payment


def _apply(obj: Payment | Refund, step: Callable[..., Any], **kwargs: Any) -> Any:
    """Run the django-fsm-2 transition `step` (a bound method of `obj`); a wrong source state is InvalidState."""
    try:
        return step(**kwargs)
    except TransitionNotAllowed as exc:
        noun = "Payment" if isinstance(obj, Payment) else "Refund"
        raise InvalidState(
            f"{noun} {obj.pk} is {obj.status}; it does not allow {step.__name__.replace('_', ' ')}.",
            payment_status=obj.status if isinstance(obj, Payment) else obj.payment.status,
        ) from exc


def _authorization_expiry(at: datetime) -> datetime:
    return at + timedelta(seconds=settings.PAYMENT_AUTHORIZATION_TTL)


@transaction.atomic(savepoint=False)
def payment_create(
    *,
    merchant: Merchant,
    mode: str,
    amount: int,
    currency: str,
    payment_method: str,
    capture_method: str = CaptureMethod.AUTOMATIC,
    description: str = "",
    metadata: dict[str, str] | None = None,
    customer_email: str = "",
    customer_ip: str | None = None,
    processor: str | None = None,
) -> Rendered[Payment]:
    """Accept a payment: store it as `processing` and emit `payment.created`, which the worker authorizes.

    `amount` is in minor units of `currency` (ISO 4217, validated by the caller). Never calls a processor.
    Returns the payment with its API form, the event's snapshot (`data.object`), so the answer renders nothing.
    Inside a caller's transaction it opens no savepoint (two round trips saved on the accept path): an error
    then rolls back the caller's whole transaction, so callers must not catch it and go on in that transaction.
    """
    payment = Payment.objects.create(
        merchant=merchant,
        mode=mode,
        amount=amount,
        currency=currency,
        payment_method=payment_method,
        capture_method=capture_method,
        description=description,
        metadata=metadata or {},
        customer_email=customer_email,
        customer_ip=customer_ip,
        processor=processor or settings.DEFAULT_PROCESSOR,
    )
    # A new payment has no settlement holds: say so, so that rendering it (the event's snapshot, also the answer)
    # does not ask.
    payment._prefetched_objects_cache = {"settlement_holds": SettlementHold.objects.none()}
    event = events.event_emit(type=events.PAYMENT_CREATED, payment=payment)
    return Rendered(obj=payment, body=event.data["object"])


@transaction.atomic
def payment_capture(*, merchant: Merchant, mode: str, payment_id: str, amount_to_capture: int | None = None) -> Payment:
    """Request capture of an authorized payment (all of it unless `amount_to_capture`, minor units, is given).

    The payment becomes `capturing` and the worker asks the processor. Raises NotFound (also for another
    merchant's payment), InvalidState unless `authorized`, InvalidAmount unless 0 < amount ≤ authorized.
    """
    payment = _lock(payment_id=payment_id, merchant_id=merchant.pk, mode=mode)
    amount = payment.amount if amount_to_capture is None else amount_to_capture
    if payment.status == PaymentStatus.AUTHORIZED and not 0 < amount <= payment.amount:
        raise InvalidAmount(f"amount_to_capture must be between 1 and {payment.amount}.", param="amount_to_capture")
    _apply(payment, payment.request_capture)
    payment.save(update_fields=["status", "updated_at"])
    outbox.publish(commands.COMMAND_CAPTURE, key=payment.id, payload={"payment_id": payment.id, "amount": amount})
    return payment


@transaction.atomic
def payment_void(*, merchant: Merchant, mode: str, payment_id: str, reason: str = "") -> Payment:
    """Request a void of an authorized, uncaptured payment. It becomes `voiding`; the worker asks the processor.

    `reason` is one of requested_by_customer, duplicate, fraudulent, abandoned (or empty).
    Raises NotFound, or InvalidState unless `authorized`.
    """
    payment = _lock(payment_id=payment_id, merchant_id=merchant.pk, mode=mode)
    _apply(payment, payment.request_void, reason=reason)
    payment.save(update_fields=["status", "void_reason", "updated_at"])
    outbox.publish(commands.COMMAND_VOID, key=payment.id, payload={"payment_id": payment.id})
    return payment


# --- Worker-side services: record what the processor answered -------------------------------------------------


@transaction.atomic
def payment_authorization_record(*, payment_id: str, result: AuthorizationResult) -> Payment:
    """Record the processor's authorization answer: `authorized` (a pending ledger transaction,
    `payment.authorized`, and for automatic capture the capture request) or `failed` (`payment.failed`; nothing is
    posted).

    Idempotent: a payment no longer `processing` is returned unchanged.
    """
    payment = _lock(payment_id=payment_id)
    if payment.status != PaymentStatus.PROCESSING:
        return payment
    now = timezone.now()
    payment.psp_reference = result.psp_reference
    if result.card is not None:
        payment.card_brand = result.card.brand
        payment.card_bin = result.card.bin
        payment.card_last4 = result.card.last4
        payment.card_country = result.card.country
        payment.card_fingerprint = result.card.fingerprint
    if not result.approved:
        _apply(
            payment,
            payment.fail,
            code=result.decline_code or "card_declined",
            message=result.decline_message or "The card was declined.",
        )
        payment.save()
        events.event_emit(type=events.PAYMENT_FAILED, payment=payment)
        return payment
    _apply(payment, payment.authorize, at=now, expires_at=_authorization_expiry(now))
    payment.save()
    postings.post_authorization(payment)
    events.event_emit(type=events.PAYMENT_AUTHORIZED, payment=payment)
    if payment.capture_method == CaptureMethod.AUTOMATIC:
        _apply(payment, payment.request_capture)
        payment.save(update_fields=["status", "updated_at"])
        outbox.publish(
            commands.COMMAND_CAPTURE, key=payment.id, payload={"payment_id": payment.id, "amount": payment.amount}
        )
    return payment


@transaction.atomic
def payment_authorization_fail(*, payment_id: str, code: str, message: str) -> Payment:
    """Give up on authorizing (processor unreachable after every retry): `failed` with `code`, `payment.failed`.

    Idempotent: a payment no longer `processing` is returned unchanged.
    """
    payment = _lock(payment_id=payment_id)
    if payment.status != PaymentStatus.PROCESSING:
        return payment
    _apply(payment, payment.fail, code=code, message=message)
    payment.save()
    events.event_emit(type=events.PAYMENT_FAILED, payment=payment)
    return payment


@transaction.atomic
def payment_capture_record(*, payment_id: str, amount: int, psp_reference: str = "") -> Payment:
    """Record an accepted capture of `amount` minor units: `captured`, the ledger posts the pending transaction,
    `payment.captured`.

    `psp_reference` is the capture's own PSP reference (a settlement report's `Modification Reference`).
    Idempotent: a payment no longer `capturing` is returned unchanged.
    """
    payment = _lock(payment_id=payment_id)
    if payment.status != PaymentStatus.CAPTURING:
        return payment
    _apply(payment, payment.capture, amount=amount, at=timezone.now())
    payment.capture_psp_reference = psp_reference
    payment.save()
    postings.post_capture(payment, amount=amount)
    events.event_emit(type=events.PAYMENT_CAPTURED, payment=payment)
    return payment


@transaction.atomic
def payment_modification_refused(*, payment_id: str, in_status: str, code: str, message: str) -> Payment:
    """The processor refused a capture or void: back to `authorized`, with `payment.capture_failed` or
    `payment.void_failed`. Idempotent: does nothing unless the payment is still `in_status`."""
    payment = _lock(payment_id=payment_id)
    if payment.status != in_status:
        return payment
    step = payment.refuse_capture if in_status == PaymentStatus.CAPTURING else payment.refuse_void
    _apply(payment, step, code=code, message=message)
    payment.save()
    event_type = events.PAYMENT_CAPTURE_FAILED if in_status == PaymentStatus.CAPTURING else events.PAYMENT_VOID_FAILED
    events.event_emit(type=event_type, payment=payment)
    return payment


@transaction.atomic
def payment_void_record(*, payment_id: str) -> Payment:
    """Record an accepted void: `voided`, the pending ledger transaction released, `payment.voided`. Idempotent."""
    payment = _lock(payment_id=payment_id)
    if payment.status != PaymentStatus.VOIDING:
        return payment
    _apply(payment, payment.void, at=timezone.now())
    payment.save()
    postings.post_void(payment)
    events.event_emit(type=events.PAYMENT_VOIDED, payment=payment)
    return payment


# --- Authorization expiry ------------------------------------------------------------------------------------


@transaction.atomic
def payment_expire(*, payment_id: str, now: datetime | None = None) -> Payment:
    """Expire an uncaptured authorization whose `expires_at` (authorized_at + PAYMENT_AUTHORIZATION_TTL seconds,
    7 days by default, like a card hold) has passed: `expired`, the pending ledger transaction released
    (`expiry_release`), `payment.expired`, and a best-effort cancel at the processor (`payments.cancel_expired`).

    `now` is the clock (default: the current time). Idempotent: a payment not `authorized`, or not yet due, is
    returned unchanged. Locks the payment row, so it never races a capture or void request.
    """
    payment = _lock(payment_id=payment_id)
    now = now or timezone.now()
    if payment.status != PaymentStatus.AUTHORIZED or payment.expires_at is None or payment.expires_at > now:
        return payment
    _apply(payment, payment.expire, at=now)
    payment.save()
    postings.post_expiry_release(payment)
    events.event_emit(type=events.PAYMENT_EXPIRED, payment=payment)
    outbox.publish(commands.COMMAND_CANCEL_EXPIRED, key=payment.id, payload={"payment_id": payment.id})
    return payment


def payments_expire_due(*, now: datetime | None = None, batch_size: int = 100, max_batches: int = 50) -> int:
    """Expire every authorization due at `now` (default: the current time), each in its own transaction.

    Called by Celery beat (`payments.tasks.authorizations_expire`). Returns how many payments expired.
    """
    from payments import selectors

    now = now or timezone.now()
    expired = 0
    for _ in range(max_batches):
        due = selectors.payment_ids_due_for_expiry(now=now, limit=batch_size)
        for payment_id in due:
            if payment_expire(payment_id=payment_id, now=now).status == PaymentStatus.EXPIRED:
                expired += 1
        if len(due) < batch_size:
            break
    return expired


# --- Refunds -------------------------------------------------------------------------------------------------


@transaction.atomic
def refund_create(
    *,
    merchant: Merchant,
    mode: str,
    payment_id: str,
    amount: int | None = None,
    reason: str = "",
    metadata: dict[str, str] | None = None,
) -> Rendered[Refund]:
    """Request a refund of `amount` minor units (default: everything still refundable) of a captured payment.

    The refund is stored `pending`, its amount reserved on the payment (`amount_refunding`), `refund.created` is
    emitted and the worker sends it to the processor (`payments.refund`). The payment row is locked, so parallel
    refunds are serialised and their total never exceeds `amount_captured` (a check constraint backs this up).
    Raises NotFound (also for another merchant's or mode's payment), InvalidState unless the payment is
    `captured` or `partially_refunded`, InvalidAmount unless 0 < amount ≤ what is still refundable.
    Returns the refund with its API form, the `refund.created` snapshot (`data.object`).
    """
    payment = _lock(payment_id=payment_id, merchant_id=merchant.pk, mode=mode)
    if payment.status not in (PaymentStatus.CAPTURED, PaymentStatus.PARTIALLY_REFUNDED):
        raise InvalidState(
            f"Payment {payment.id} is {payment.status}; only captured payments can be refunded.",
            payment_status=payment.status,
        )
    refundable = payment.amount_refundable
    amount = refundable if amount is None else amount
    if not 0 < amount <= refundable:
        raise InvalidAmount(
            f"amount must be between 1 and {refundable} (captured {payment.amount_captured}, refunded "
            f"{payment.amount_refunded}, pending refunds {payment.amount_refunding}).",
            param="amount",
        )
    _apply(payment, payment.reserve_refund, amount=amount)
    payment.save(update_fields=["amount_refunding", "updated_at"])
    refund = Refund.objects.create(
        merchant=merchant,
        mode=mode,
        payment=payment,
        amount=amount,
        currency=payment.currency,
        reason=reason,
        metadata=metadata or {},
    )
    event = events.event_emit(type=events.REFUND_CREATED, payment=payment, refund=refund)
    outbox.publish(commands.COMMAND_REFUND, key=payment.id, payload={"payment_id": payment.id, "refund_id": refund.id})
    return Rendered(obj=refund, body=event.data["object"])


def _lock_refund(refund_id: str) -> tuple[Payment, Refund]:
    """Lock a refund's payment, then the refund (always in this order)."""
    payment_id = Refund.objects.filter(pk=refund_id).values_list("payment_id", flat=True).first()
    if payment_id is None:
        raise NotFound(f"No such refund: {refund_id}", param="id")
    payment = _lock(payment_id=payment_id)
    refund = Refund.objects.select_for_update().get(pk=refund_id)
    return payment, refund


@transaction.atomic
def refund_success_record(*, refund_id: str, psp_reference: str) -> Refund:
    """Record that the processor accepted a refund: `succeeded`, the payment's `amount_refunded` grows and it
    becomes `partially_refunded` or `refunded`, the ledger posts `refund` (docs/ledger.md), and `refund.succeeded`
    plus `payment.partially_refunded` / `payment.refunded` are emitted.

    Idempotent: a refund no longer `pending` is returned unchanged. Locks the payment row, then the refund row.
    """
    payment, refund = _lock_refund(refund_id)
    if refund.status != RefundStatus.PENDING:
        return refund
    now = timezone.now()
    _apply(refund, refund.succeed, psp_reference=psp_reference, at=now)
    refund.save()
    _apply(payment, payment.settle_refund, amount=refund.amount)
    payment.save()
    postings.post_refund(refund)
    events.event_emit(type=events.REFUND_SUCCEEDED, payment=payment, refund=refund)
    fully = payment.status == PaymentStatus.REFUNDED
    events.event_emit(type=events.PAYMENT_REFUNDED if fully else events.PAYMENT_PARTIALLY_REFUNDED, payment=payment)
    return refund


@transaction.atomic
def refund_failure_record(*, refund_id: str, code: str, message: str) -> Refund:
    """Record that a refund failed (refused by the processor, or unreachable after every retry): `failed` with
    `failure_code` = `code`, the payment's reservation released, `refund.failed`. Nothing is posted.

    Idempotent: a refund no longer `pending` is returned unchanged. Locks the payment row, then the refund row.
    """
    payment, refund = _lock_refund(refund_id)
    if refund.status != RefundStatus.PENDING:
        return refund
    _apply(refund, refund.fail, code=code, message=message or code, at=timezone.now())
    refund.save()
    _apply(payment, payment.release_refund, amount=refund.amount)
    payment.save(update_fields=["amount_refunding", "updated_at"])
    events.event_emit(type=events.REFUND_FAILED, payment=payment, refund=refund)
    return refund


# --- Idempotency keys ----------------------------------------------------------------------------------------
