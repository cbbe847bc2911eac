"""Domain errors raised by payments services. Each has a stable `code` and the HTTP status the API maps it to."""

from __future__ import annotations

from config.platform.errors import DomainError, NotFound, ReasonRequired

__all__ = ["InvalidAmount", "InvalidState", "NotFound", "NotHeld", "PaymentsError", "ReasonRequired"]


class PaymentsError(DomainError):
    """Base class of the payments app's errors (config.platform.errors.DomainError: `code`, `status`, `title`)."""

    code = "payments_error"
    title = "Payments error"


class InvalidState(PaymentsError):
    """The payment's status does not allow the requested transition (e.g. capturing a voided payment)."""

    code = "payment_invalid_state"
    status = 409
    title = "Payment is in the wrong state"


class InvalidAmount(PaymentsError):
    """An amount is out of range for the operation (e.g. capturing more than was authorized)."""

    code = "amount_invalid"
    status = 400
    title = "Invalid amount"


class NotHeld(InvalidState):
    """The payment has no active hold (releasing or voiding a held payment needs one)."""

    code = "payment_not_held"
    status = 409
    title = "Payment is not on hold"
