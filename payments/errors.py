"""Domain errors raised by payments services. Each has a stable `code` and the HTTP status the API maps it to."""

from __future__ import annotations


class PaymentsError(Exception):
    """Base class: `code` is a stable machine code, `status` the HTTP status, `title` a short summary."""

    code = "payments_error"
    status = 400
    title = "Payments error"

    def __init__(self, detail: str = "", **extra: object) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra


class NotFound(PaymentsError):
    """The object does not exist for this merchant and mode (another merchant's objects are 'not found' too)."""

    code = "not_found"
    status = 404
    title = "Not found"


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


class ReasonRequired(PaymentsError):
    """A staff action (void, release a hold, replay, resolve) needs a typed reason; it was empty."""

    code = "reason_required"
    status = 400
    title = "A reason is required"


class TooManyApiKeys(PaymentsError):
    """A merchant already holds the two active keys a mode allows; revoke one before creating another."""

    code = "api_key_limit"
    status = 409
    title = "Too many active API keys"
