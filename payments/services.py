"""Payments write services (use cases). Each owns its database transaction and writes its events in it.

Every state change locks the payment row (`SELECT … FOR UPDATE`), checks the transition, writes the new state,
its ledger postings and its events (outbox rows) in one transaction, so they all commit or none do. No service
called from an API request talks to a processor: that happens in the outbox worker (payments.handlers).
"""

from __future__ import annotations

import hashlib
import secrets
import string

from django.db import transaction
from django.utils import timezone

from payments import events, outbox, postings
from payments.errors import InvalidAmount, InvalidState, NotFound
from payments.models import ApiKey, CaptureMethod, Merchant, Mode, Payment, PaymentStatus
from payments.processors.base import AuthorizationResult

_BASE62 = string.ascii_letters + string.digits

#: Allowed status transitions (from → to). Anything else raises InvalidState.
TRANSITIONS: dict[str, set[str]] = {
    PaymentStatus.PROCESSING: {PaymentStatus.AUTHORIZED, PaymentStatus.FAILED},
    PaymentStatus.AUTHORIZED: {PaymentStatus.CAPTURING, PaymentStatus.VOIDING},
    PaymentStatus.CAPTURING: {PaymentStatus.CAPTURED, PaymentStatus.AUTHORIZED},
    PaymentStatus.VOIDING: {PaymentStatus.VOIDED, PaymentStatus.AUTHORIZED},
}


def hash_api_key(raw_key: str) -> str:
    """SHA-256 hex digest of a secret API key (keys carry ~190 random bits, so a fast hash suffices)."""
    return hashlib.sha256(raw_key.encode()).hexdigest()


def api_key_create(*, merchant: Merchant, mode: str = Mode.TEST) -> tuple[ApiKey, str]:
    """Create a secret key for `merchant` in `mode`; returns (row, plaintext). The plaintext is never stored."""
    raw = f"sk_{mode}_" + "".join(secrets.choice(_BASE62) for _ in range(32))
    key = ApiKey.objects.create(merchant=merchant, mode=mode, prefix=raw[:16], key_hash=hash_api_key(raw))
    return key, raw


@transaction.atomic
def merchant_create(*, name: str) -> tuple[Merchant, str]:
    """Create a merchant and its first test-mode secret key; returns (merchant, plaintext key)."""
    merchant = Merchant.objects.create(name=name)
    _, raw = api_key_create(merchant=merchant, mode=Mode.TEST)
    return merchant, raw


def _lock(*, payment_id: str, merchant_id: str | None = None, mode: str | None = None) -> Payment:
    qs = Payment.objects.select_for_update().filter(pk=payment_id)
    if merchant_id is not None:
        qs = qs.filter(merchant_id=merchant_id, mode=mode)
    payment = qs.first()
    if payment is None:
        raise NotFound(f"No such payment: {payment_id}", param="id")
    return payment


def _transition(payment: Payment, to: str) -> None:
    if to not in TRANSITIONS.get(payment.status, set()):
        raise InvalidState(
            f"Payment {payment.id} is {payment.status}; it cannot become {to}.", payment_status=payment.status
        )
    payment.status = to


@transaction.atomic
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
) -> Payment:
    """Accept a payment: store it as `processing` and emit `payment.created`, which the worker authorizes.

    `amount` is in minor units of `currency` (ISO 4217, validated by the caller). Never calls a processor.
    """
    from django.conf import settings

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
    events.event_emit(type=events.PAYMENT_CREATED, payment=payment)
    return payment


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
    _transition(payment, PaymentStatus.CAPTURING)
    payment.save(update_fields=["status", "updated_at"])
    outbox.publish(events.COMMAND_CAPTURE, key=payment.id, payload={"payment_id": payment.id, "amount": amount})
    return payment


@transaction.atomic
def payment_void(*, merchant: Merchant, mode: str, payment_id: str, reason: str = "") -> Payment:
    """Request a void of an authorized, uncaptured payment. It becomes `voiding`; the worker asks the processor.

    `reason` is one of requested_by_customer, duplicate, fraudulent, abandoned (or empty).
    Raises NotFound, or InvalidState unless `authorized`.
    """
    payment = _lock(payment_id=payment_id, merchant_id=merchant.pk, mode=mode)
    _transition(payment, PaymentStatus.VOIDING)
    payment.void_reason = reason
    payment.save(update_fields=["status", "void_reason", "updated_at"])
    outbox.publish(events.COMMAND_VOID, key=payment.id, payload={"payment_id": payment.id})
    return payment


# --- Worker-side services: record what the processor answered -------------------------------------------------


@transaction.atomic
def payment_authorization_record(*, payment_id: str, result: AuthorizationResult) -> Payment:
    """Record the processor's authorization answer: `authorized` (ledger hold, `payment.authorized`, and for
    automatic capture the capture request) or `failed` (`payment.failed`; nothing is posted).

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
        _transition(payment, PaymentStatus.FAILED)
        payment.failure_code = result.decline_code or "card_declined"
        payment.failure_message = result.decline_message or "The card was declined."
        payment.save()
        events.event_emit(type=events.PAYMENT_FAILED, payment=payment)
        return payment
    _transition(payment, PaymentStatus.AUTHORIZED)
    payment.authorized_at = now
    payment.save()
    postings.post_authorization(payment)
    events.event_emit(type=events.PAYMENT_AUTHORIZED, payment=payment)
    if payment.capture_method == CaptureMethod.AUTOMATIC:
        _transition(payment, PaymentStatus.CAPTURING)
        payment.save(update_fields=["status", "updated_at"])
        outbox.publish(
            events.COMMAND_CAPTURE, key=payment.id, payload={"payment_id": payment.id, "amount": payment.amount}
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
    _transition(payment, PaymentStatus.FAILED)
    payment.failure_code = code
    payment.failure_message = message[:255]
    payment.save()
    events.event_emit(type=events.PAYMENT_FAILED, payment=payment)
    return payment


@transaction.atomic
def payment_capture_record(*, payment_id: str, amount: int, psp_reference: str = "") -> Payment:
    """Record an accepted capture of `amount` minor units: `captured`, ledger posts the hold, `payment.captured`.

    `psp_reference` is the capture's own PSP reference (a settlement report's `Modification Reference`).
    Idempotent: a payment no longer `capturing` is returned unchanged.
    """
    payment = _lock(payment_id=payment_id)
    if payment.status != PaymentStatus.CAPTURING:
        return payment
    _transition(payment, PaymentStatus.CAPTURED)
    payment.amount_captured = amount
    payment.capture_psp_reference = psp_reference
    payment.captured_at = timezone.now()
    payment.failure_code = payment.failure_message = ""
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
    _transition(payment, PaymentStatus.AUTHORIZED)
    payment.failure_code = code
    payment.failure_message = message[:255]
    payment.save()
    event_type = events.PAYMENT_CAPTURE_FAILED if in_status == PaymentStatus.CAPTURING else events.PAYMENT_VOID_FAILED
    events.event_emit(type=event_type, payment=payment)
    return payment


@transaction.atomic
def payment_void_record(*, payment_id: str) -> Payment:
    """Record an accepted void: `voided`, the ledger hold is released, `payment.voided`. Idempotent."""
    payment = _lock(payment_id=payment_id)
    if payment.status != PaymentStatus.VOIDING:
        return payment
    _transition(payment, PaymentStatus.VOIDED)
    payment.voided_at = timezone.now()
    payment.save()
    postings.post_void(payment)
    events.event_emit(type=events.PAYMENT_VOIDED, payment=payment)
    return payment
