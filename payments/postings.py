"""How payment steps post to the ledger (the posting rules; docs/ledger.md has them as a table).

| step | ledger code | kind | debit | credit |
|---|---|---|---|---|
| authorized (a) | `authorization_hold` | pending | platform processor_receivable | merchant pending |
| captured (c ≤ a) | `capture` | post_pending: c posted, a − c released | processor_receivable | merchant pending |
| voided | `void_release` | void_pending: a released | — | — |
| expired (not captured in time) | `expiry_release` | void_pending: a released | — | — |
| refund succeeded (r) | `refund` | posted | merchant pending | processor_receivable |
| failed (declined), refund failed | nothing | — | — | — |

A refund reverses part of a capture before settlement: the merchant is owed r less (debit its `pending`
liability) and the processor will pay r less (credit `processor_receivable`; the processor nets the refund in its
settlement report, e.g. Adyen's `Refunded` rows).

Test-mode and live-mode money never meet: ledger owners carry the mode (`test:merchant:mer_…`, `test:platform`;
payments.ledger_refs is the one home of these strings).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ledger import services as ledger_services
from ledger.contracts import AccountPurpose, AccountRef, Leg, Side, TransactionRecord
from ledger.errors import TransactionNotFound
from payments.ledger_refs import merchant_owner, platform_owner
from payments.models import Payment, Refund

#: The code of an authorization's pending ledger transaction (a stored string: it stays `authorization_hold`, the
#: issuer's authorization hold it mirrors).
AUTHORIZATION_PENDING_CODE = "authorization_hold"


def _refs(payment: Payment) -> tuple[AccountRef, AccountRef]:
    receivable = AccountRef(
        owner=platform_owner(mode=payment.mode),
        purpose=AccountPurpose.PROCESSOR_RECEIVABLE,
        currency=payment.currency,
    )
    merchant_pending = AccountRef(
        owner=merchant_owner(merchant_id=payment.merchant_id, mode=payment.mode),
        purpose=AccountPurpose.MERCHANT_PENDING,
        currency=payment.currency,
    )
    return receivable, merchant_pending


def _authorization_key(payment: Payment) -> str:
    """The idempotency key of the payment's authorization pending transaction (the ledger finds it by this key)."""
    return f"{payment.id}:{AUTHORIZATION_PENDING_CODE}"


def post_authorization(payment: Payment) -> TransactionRecord:
    """Record the authorized amount as a pending ledger transaction (idempotent per payment)."""
    receivable, merchant_pending = _refs(payment)
    return ledger_services.pending_create(
        code=AUTHORIZATION_PENDING_CODE,
        reference=payment.ledger_reference,
        idempotency_key=_authorization_key(payment),
        debit=receivable,
        credit=merchant_pending,
        amount=payment.amount,
    )


@contextmanager
def _authorization_found(payment: Payment) -> Iterator[None]:
    """Raise LookupError when the ledger has no authorization pending transaction for `payment`."""
    try:
        yield
    except TransactionNotFound as exc:
        raise LookupError(f"payment {payment.id} has no authorization hold in the ledger") from exc


def post_capture(payment: Payment, *, amount: int) -> TransactionRecord:
    """Post `amount` minor units of the authorization's pending transaction and release the remainder (idempotent
    per payment)."""
    with _authorization_found(payment):
        return ledger_services.pending_post(
            pending_key=_authorization_key(payment),
            amount=amount,
            code="capture",
            reference=payment.ledger_reference,
            idempotency_key=f"{payment.id}:capture",
        )


def post_void(payment: Payment) -> TransactionRecord:
    """Release the whole authorization's pending transaction (idempotent per payment)."""
    with _authorization_found(payment):
        return ledger_services.pending_void(
            pending_key=_authorization_key(payment),
            code="void_release",
            reference=payment.ledger_reference,
            idempotency_key=f"{payment.id}:void_release",
        )


def post_expiry_release(payment: Payment) -> TransactionRecord:
    """Release the whole pending transaction of an expired authorization (idempotent per payment)."""
    with _authorization_found(payment):
        return ledger_services.pending_void(
            pending_key=_authorization_key(payment),
            code="expiry_release",
            reference=payment.ledger_reference,
            idempotency_key=f"{payment.id}:expiry_release",
        )


def post_refund(refund: Refund) -> TransactionRecord:
    """Post a succeeded refund of `refund.amount` minor units: debit the merchant's pending account, credit the
    platform's processor_receivable (idempotent per refund)."""
    receivable, merchant_pending = _refs(refund.payment)
    return ledger_services.transaction_post(
        code="refund",
        reference=refund.payment.ledger_reference,
        idempotency_key=f"{refund.id}:refund",
        legs=[
            Leg(account=merchant_pending, side=Side.DEBIT, amount=refund.amount),
            Leg(account=receivable, side=Side.CREDIT, amount=refund.amount),
        ],
        description=f"refund {refund.id}",
    )
