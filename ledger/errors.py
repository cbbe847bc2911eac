"""Errors raised by ledger services."""


class LedgerError(Exception):
    """Base class for ledger errors."""


class UnbalancedTransaction(LedgerError):
    """The legs of a ledger transaction do not sum to zero per currency."""


class InvalidAmount(LedgerError):
    """An amount is not a non-zero integer of minor units, or its currency is not a valid ISO 4217 currency."""


class HoldAlreadyResolved(LedgerError):
    """A pending ledger transaction was already posted or voided; it resolves once.

    (The ledger's word is "pending transaction"; this class and its siblings keep their original names so that
    callers catching them are unaffected.)
    """


class NotAHold(LedgerError):
    """The ledger transaction given to `pending_post`/`pending_void` is not a pending one."""


class HoldAmountExceeded(LedgerError):
    """Posting more than the pending transaction's amount (or a negative amount)."""


class InsufficientFunds(LedgerError):
    """A posting would take an account's available balance below zero, and the caller asked for it to be
    refused (`no_overdraft=`). Nothing is written."""


class IdempotencyConflict(LedgerError):
    """An idempotency key was reused for a different ledger transaction (other code, reference, pending
    transaction or legs).

    Like TigerBeetle's transfer ids: a retry must repeat the same fields; different fields are an error, not a
    second ledger transaction.
    """


class NotReversible(LedgerError):
    """The ledger transaction cannot be reversed: a pending one (void it instead), or one that was already reversed."""


class TransactionNotFound(LedgerError, LookupError):
    """No ledger transaction has the idempotency key a caller named (the pending transaction of `pending_post` or
    `pending_void`, the original of `transaction_reverse`)."""
