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

Test-mode and live-mode money never meet: ledger owners carry the mode (`test:merchant:mer_…`, `test:platform`).
"""

from __future__ import annotations

from ledger import selectors as ledger_selectors
from ledger import services as ledger_services
from ledger.contracts import AccountPurpose, AccountRef, Leg, Side
from ledger.models import LedgerTransaction
from payments.models import Payment, Refund

#: The code of an authorization's pending ledger transaction (a stored string: it stays `authorization_hold`, the
#: issuer's authorization hold it mirrors).
AUTHORIZATION_PENDING_CODE = "authorization_hold"


def merchant_owner(*, merchant_id: str, mode: str) -> str:
    """The ledger owner string of a merchant's accounts in `mode`."""
    return f"{mode}:merchant:{merchant_id}"


def platform_owner(*, mode: str) -> str:
    """The ledger owner string of the platform's accounts in `mode`."""
    return f"{mode}:platform"


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


def post_authorization(payment: Payment) -> LedgerTransaction:
    """Record the authorized amount as a pending ledger transaction (idempotent per payment)."""
    receivable, merchant_pending = _refs(payment)
    return ledger_services.pending_create(
        code=AUTHORIZATION_PENDING_CODE,
        reference=payment.ledger_reference,
        idempotency_key=f"{payment.id}:{AUTHORIZATION_PENDING_CODE}",
        debit=receivable,
        credit=merchant_pending,
        amount=payment.amount,
    )


def _authorization_pending(payment: Payment) -> LedgerTransaction:
    pending = ledger_selectors.pending_for_reference(
        reference=payment.ledger_reference, code=AUTHORIZATION_PENDING_CODE
    )
    if pending is None:
        raise LookupError(f"payment {payment.id} has no authorization hold in the ledger")
    return pending


def post_capture(payment: Payment, *, amount: int) -> LedgerTransaction:
    """Post `amount` minor units of the authorization's pending transaction and release the remainder (idempotent
    per payment)."""
    return ledger_services.pending_post(
        pending=_authorization_pending(payment),
        amount=amount,
        code="capture",
        reference=payment.ledger_reference,
        idempotency_key=f"{payment.id}:capture",
    )


def post_void(payment: Payment) -> LedgerTransaction:
    """Release the whole authorization's pending transaction (idempotent per payment)."""
    return ledger_services.pending_void(
        pending=_authorization_pending(payment),
        code="void_release",
        reference=payment.ledger_reference,
        idempotency_key=f"{payment.id}:void_release",
    )


def post_expiry_release(payment: Payment) -> LedgerTransaction:
    """Release the whole pending transaction of an expired authorization (idempotent per payment)."""
    return ledger_services.pending_void(
        pending=_authorization_pending(payment),
        code="expiry_release",
        reference=payment.ledger_reference,
        idempotency_key=f"{payment.id}:expiry_release",
    )


def post_refund(refund: Refund) -> LedgerTransaction:
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
