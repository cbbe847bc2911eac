"""The payments worker: outbox handlers that talk to processors and record their answers.

One subscriber (`payments.processor`) takes every payment's work in order (authorize on `payment.created`, then
the capture, void, refund and expiry-cancel commands of payments.commands), keyed by payment id, so the steps of
one payment never run concurrently.
The processor call happens outside any database transaction; its answer is recorded by a payments service.
A retryable processor error (timeout, 5xx, unreachable) raises, so the outbox retries it with backoff and the
same idempotency key; on the last attempt the payment is failed (authorization) or returned to `authorized`
(capture, void) with the error code, so no payment stays in flight for ever.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import structlog

from config.platform.outbox import engine as outbox
from payments import commands, events, services
from payments.models import Payment, PaymentStatus, Refund, RefundStatus
from payments.processors import get_processor
from payments.processors.base import AuthorizationRequest, ModificationRequest, ProcessorError

log = structlog.get_logger(__name__)

SUBSCRIBER = "payments.processor"

R = TypeVar("R")


def _processor_call(
    message: outbox.Message, call: Callable[[], R], *, on_failure: Callable[[ProcessorError], object]
) -> R | None:
    """Make one processor `call` for `message` and return its answer.

    A retryable ProcessorError is re-raised (the outbox retries the row, with the same processor idempotency key)
    unless this is the row's last attempt; then, and for any error that is not retryable, `on_failure(error)`
    records the failure and None is returned (processors never answer None).
    """
    try:
        return call()
    except ProcessorError as exc:
        if exc.retryable and not message.is_last_attempt:
            raise
        on_failure(exc)
        return None


def _authorize(payment: Payment, message: outbox.Message) -> None:
    if payment.status != PaymentStatus.PROCESSING:
        return
    processor = get_processor(payment.processor)

    def gave_up(exc: ProcessorError) -> None:
        log.warning("payments.authorize.gave_up", code=exc.code, attempt=message.attempt)
        services.payment_authorization_fail(
            payment_id=payment.id,
            code=exc.code if exc.retryable else "processor_declined",
            message=exc.message or "The processor could not be reached.",
        )

    result = _processor_call(
        message,
        lambda: processor.authorize(
            AuthorizationRequest(
                reference=payment.id,
                amount=payment.amount,
                currency=payment.currency,
                token=payment.payment_method,
                idempotency_key=f"{payment.id}:authorize",
            )
        ),
        on_failure=gave_up,
    )
    if result is None:
        return
    payment = services.payment_authorization_record(payment_id=payment.id, result=result)
    log.info("payments.authorize.done", status=payment.status, psp_reference=payment.psp_reference)


def _capture(payment: Payment, message: outbox.Message) -> None:
    if payment.status != PaymentStatus.CAPTURING:
        return
    amount = int(message.payload["amount"])
    capture = _processor_call(
        message,
        lambda: get_processor(payment.processor).capture(
            ModificationRequest(
                psp_reference=payment.psp_reference,
                amount=amount,
                currency=payment.currency,
                idempotency_key=f"{payment.id}:capture:{message.id}",
            )
        ),
        on_failure=lambda exc: services.payment_modification_refused(
            payment_id=payment.id, in_status=PaymentStatus.CAPTURING, code=exc.code, message=exc.message
        ),
    )
    if capture is None:
        return
    payment = services.payment_capture_record(payment_id=payment.id, amount=amount, psp_reference=capture.psp_reference)
    log.info("payments.capture.done", status=payment.status, amount=amount)


def _void(payment: Payment, message: outbox.Message) -> None:
    if payment.status != PaymentStatus.VOIDING:
        return
    voided = _processor_call(
        message,
        lambda: get_processor(payment.processor).void(
            ModificationRequest(
                psp_reference=payment.psp_reference,
                amount=0,
                currency=payment.currency,
                idempotency_key=f"{payment.id}:void:{message.id}",
            )
        ),
        on_failure=lambda exc: services.payment_modification_refused(
            payment_id=payment.id, in_status=PaymentStatus.VOIDING, code=exc.code, message=exc.message
        ),
    )
    if voided is None:
        return
    payment = services.payment_void_record(payment_id=payment.id)
    log.info("payments.void.done", status=payment.status)


def _refund(payment: Payment, message: outbox.Message) -> None:
    refund = Refund.objects.filter(pk=message.payload["refund_id"]).first()
    if refund is None or refund.status != RefundStatus.PENDING:
        return

    def failed(exc: ProcessorError) -> None:
        log.warning("payments.refund.failed", refund_id=refund.id, code=exc.code, attempt=message.attempt)
        services.refund_failure_record(refund_id=refund.id, code=exc.code, message=exc.message)

    result = _processor_call(
        message,
        lambda: get_processor(payment.processor).refund(
            ModificationRequest(
                psp_reference=payment.psp_reference,
                amount=refund.amount,
                currency=refund.currency,
                idempotency_key=f"{refund.id}:refund",
            )
        ),
        on_failure=failed,
    )
    if result is None:
        return
    refund = services.refund_success_record(refund_id=refund.id, psp_reference=result.psp_reference)
    log.info("payments.refund.done", refund_id=refund.id, status=refund.status, amount=refund.amount)


def _cancel_expired(payment: Payment, message: outbox.Message) -> None:
    """Best effort: tell the processor to cancel an authorization we expired, so the card's hold ends sooner.

    Retryable errors raise (the outbox retries) until the last attempt; a refusal (e.g. the processor already
    expired it) or the last failure is only logged: the payment stays `expired` either way.
    """
    if payment.status != PaymentStatus.EXPIRED or not payment.psp_reference:
        return
    cancelled = _processor_call(
        message,
        lambda: get_processor(payment.processor).void(
            ModificationRequest(
                psp_reference=payment.psp_reference,
                amount=0,
                currency=payment.currency,
                idempotency_key=f"{payment.id}:expiry_cancel",
            )
        ),
        on_failure=lambda exc: log.warning("payments.expiry_cancel.refused", code=exc.code),
    )
    if cancelled is None:
        return
    log.info("payments.expiry_cancel.done")


#: What the worker does for each topic it receives: `payment.created` (a public event) starts the authorization;
#: the others are commands (payments.commands).
STEPS: dict[str, Callable[[Payment, outbox.Message], None]] = {
    events.PAYMENT_CREATED: _authorize,
    commands.COMMAND_CAPTURE: _capture,
    commands.COMMAND_VOID: _void,
    commands.COMMAND_REFUND: _refund,
    commands.COMMAND_CANCEL_EXPIRED: _cancel_expired,
}


@outbox.subscriber(SUBSCRIBER, topics=STEPS)
def handle(message: outbox.Message) -> None:
    """Run the step of `message.topic` (STEPS) on its payment. Raises ProcessorError to have the outbox retry it."""
    payment = Payment.objects.filter(pk=message.payload["payment_id"]).first()
    if payment is None:
        log.error("payments.worker.payment_missing", payment_id=message.payload["payment_id"])
        return
    with structlog.contextvars.bound_contextvars(payment_id=payment.id):
        STEPS[message.topic](payment, message)
