"""How payment steps post to the ledger (the posting rules; docs/ledger.md has them as a table).

| step | ledger code | kind | debit | credit |
|---|---|---|---|---|
| authorized | `authorization_hold` | hold (pending) | platform processor_receivable | merchant pending |
| captured (c ≤ held) | `capture` | posts c of the hold, releases the rest | processor_receivable | merchant pending |
| voided | `void_release` | voids the hold | — | — |
| expired (uncaptured hold lapsed) | `expiry_release` | voids the hold | — | — |
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

HOLD_CODE = "authorization_hold"


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
    """Hold the authorized amount: a pending ledger transaction (idempotent per payment)."""
    receivable, merchant_pending = _refs(payment)
    return ledger_services.hold_create(
        code=HOLD_CODE,
        reference=payment.ledger_reference,
        idempotency_key=f"{payment.id}:{HOLD_CODE}",
        debit=receivable,
        credit=merchant_pending,
        amount=payment.amount,
    )


def _hold(payment: Payment) -> LedgerTransaction:
    hold = ledger_selectors.hold_for_reference(reference=payment.ledger_reference, code=HOLD_CODE)
    if hold is None:
        raise LookupError(f"payment {payment.id} has no authorization hold in the ledger")
    return hold


def post_capture(payment: Payment, *, amount: int) -> LedgerTransaction:
    """Post `amount` minor units of the hold and release the remainder (idempotent per payment)."""
    return ledger_services.hold_post(
        hold=_hold(payment),
        amount=amount,
        code="capture",
        reference=payment.ledger_reference,
        idempotency_key=f"{payment.id}:capture",
    )


def post_void(payment: Payment) -> LedgerTransaction:
    """Release the whole hold (idempotent per payment)."""
    return ledger_services.hold_void(
        hold=_hold(payment),
        code="void_release",
        reference=payment.ledger_reference,
        idempotency_key=f"{payment.id}:void_release",
    )


def post_expiry_release(payment: Payment) -> LedgerTransaction:
    """Release the whole hold of an expired authorization (idempotent per payment)."""
    return ledger_services.hold_void(
        hold=_hold(payment),
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
