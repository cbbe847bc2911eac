"""Booking what a settlement report settled: one ledger transaction (ledger.services) and one Settlement row each.

- A matched capture (`<payment id>:settlement`) moves the captured amount from the merchant's `pending` to their
  `available` account and books the row's fees (Commission + Markup + Scheme Fees + Interchange) from the
  platform's `processor_receivable` to its `processor_fees` expense account (docs/ledger.md).
- A matched refund (`<refund id>:refund_settlement`): the refunded amount leaves the merchant's `available` for
  their `pending` account (where the refund was taken from), with the row's commission.
- A `Fee` row (the processor's daily fee, `<processor>:<Modification Reference>:processor_fee`) is booked the same
  way as a row's fees. `MerchantPayout` rows are only counted (reconciliation.services): nothing is booked.

Every booking is keyed twice: a Settlement row already recorded for it means nothing is written, and the ledger's
idempotency key means the same transaction is never posted twice. Amounts are integers in minor units. Callers run
this inside the batch's database transaction, with the payment rows locked (payments.selectors).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings

from ledger import services as ledger_services
from ledger.contracts import AccountPurpose, AccountRef, Leg, Side
from payments.contracts import SettlementPayment
from payments.ledger_refs import merchant_owner, payment_reference, platform_owner
from reconciliation import matching
from reconciliation.models import ReconciliationRun, Settlement, SettlementKind
from reconciliation.report import ReportRow

SETTLEMENT_CODE = "settlement"
REFUND_SETTLEMENT_CODE = "refund_settlement"
PROCESSOR_FEE_CODE = "processor_fee"


def processor_mode(processor: str) -> str:
    """The mode (`test`/`live`) of a processor's own fees: PROCESSORS[name]["MODE"], `test` when unset (the
    sandbox acquirer)."""
    return str(settings.PROCESSORS[processor].get("MODE", "test"))


def _fee_legs(*, mode: str, currency: str, amount: int) -> list[Leg]:
    platform = platform_owner(mode=mode)
    fees = AccountRef(owner=platform, purpose=AccountPurpose.PROCESSOR_FEES, currency=currency)
    receivable = AccountRef(owner=platform, purpose=AccountPurpose.PROCESSOR_RECEIVABLE, currency=currency)
    if amount == 0:
        return []
    if amount > 0:  # the processor keeps it: an expense, and less to receive
        return [
            Leg(account=fees, side=Side.DEBIT, amount=amount),
            Leg(account=receivable, side=Side.CREDIT, amount=amount),
        ]
    return [
        Leg(account=receivable, side=Side.DEBIT, amount=-amount),
        Leg(account=fees, side=Side.CREDIT, amount=-amount),
    ]


def _book_capture(item: matching.Settle, run: ReconciliationRun) -> Settlement | None:
    payment: SettlementPayment = item.payment  # type: ignore[assignment]
    row = item.row
    if Settlement.objects.filter(kind=SettlementKind.CAPTURE, payment_id=payment.payment_id).exists():
        return None
    merchant = merchant_owner(merchant_id=payment.merchant_id, mode=payment.mode)
    gross = payment.amount_captured
    legs = [
        Leg(
            account=AccountRef(owner=merchant, purpose=AccountPurpose.MERCHANT_PENDING, currency=payment.currency),
            side=Side.DEBIT,
            amount=gross,
        ),
        Leg(
            account=AccountRef(owner=merchant, purpose=AccountPurpose.MERCHANT_AVAILABLE, currency=payment.currency),
            side=Side.CREDIT,
            amount=gross,
        ),
        *_fee_legs(mode=payment.mode, currency=payment.currency, amount=row.fees),
    ]
    txn = ledger_services.transaction_post(
        code=SETTLEMENT_CODE,
        reference=payment.ledger_reference,
        idempotency_key=f"{payment.payment_id}:settlement",
        legs=legs,
        description=f"{run.processor} batch {row.batch_number} {row.modification_reference}"[:255],
    )
    return _settlement_record(
        run,
        row,
        kind=SettlementKind.CAPTURE,
        payment_id=payment.payment_id,
        psp_reference=row.psp_reference,
        modification_reference=row.modification_reference or row.psp_reference,
        currency=payment.currency,
        gross_amount=gross,
        fees=row.fees,
        ledger_transaction_id=txn.id,
    )


def _book_refund(item: matching.Settle, run: ReconciliationRun) -> Settlement | None:
    refund = item.refund
    row = item.row
    assert refund is not None
    if Settlement.objects.filter(
        processor=run.processor, kind=SettlementKind.REFUND, modification_reference=row.modification_reference
    ).exists():
        return None
    merchant = merchant_owner(merchant_id=refund.merchant_id, mode=refund.mode)
    legs = [
        # The refund was taken from the merchant's unsettled (pending) balance when it succeeded
        # (payments.postings.post_refund); now that the processor netted it, it leaves the available balance.
        Leg(
            account=AccountRef(owner=merchant, purpose=AccountPurpose.MERCHANT_AVAILABLE, currency=refund.currency),
            side=Side.DEBIT,
            amount=refund.amount,
        ),
        Leg(
            account=AccountRef(owner=merchant, purpose=AccountPurpose.MERCHANT_PENDING, currency=refund.currency),
            side=Side.CREDIT,
            amount=refund.amount,
        ),
        *_fee_legs(mode=refund.mode, currency=refund.currency, amount=row.fees),
    ]
    txn = ledger_services.transaction_post(
        code=REFUND_SETTLEMENT_CODE,
        reference=payment_reference(refund.payment_id),
        idempotency_key=f"{refund.refund_id}:refund_settlement",
        legs=legs,
        description=f"{run.processor} batch {row.batch_number} {row.modification_reference}"[:255],
    )
    return _settlement_record(
        run,
        row,
        kind=SettlementKind.REFUND,
        payment_id=refund.payment_id,
        refund_id=refund.refund_id,
        psp_reference=row.psp_reference,
        modification_reference=row.modification_reference,
        currency=refund.currency,
        gross_amount=refund.amount,
        fees=row.fees,
        ledger_transaction_id=txn.id,
    )


def _book_fee(item: matching.Settle, run: ReconciliationRun) -> Settlement | None:
    row = item.row
    reference = row.modification_reference or f"fee-{row.batch_number}-{row.net_currency}"
    if Settlement.objects.filter(
        processor=run.processor, kind=SettlementKind.FEE, modification_reference=reference
    ).exists():
        return None
    amount = row.net_debit or 0
    legs = _fee_legs(mode=processor_mode(run.processor), currency=row.net_currency, amount=amount)
    txn = None
    if legs:
        txn = ledger_services.transaction_post(
            code=PROCESSOR_FEE_CODE,
            reference=f"settlement:{run.processor}:{row.batch_number}",
            idempotency_key=f"{run.processor}:{reference}:processor_fee",
            legs=legs,
            description=f"{run.processor} daily fee, batch {row.batch_number}"[:255],
        )
    return _settlement_record(
        run,
        row,
        kind=SettlementKind.FEE,
        modification_reference=reference,
        currency=row.net_currency,
        gross_amount=0,
        fees=amount,
        ledger_transaction_id=txn.id,
    )


def _settlement_record(run: ReconciliationRun, row: ReportRow, **fields: Any) -> Settlement:
    """The Settlement row of `row` (a report row) booked by `run`: the run's processor and day, the row's batch,
    and `fields` (kind, ids, references, currency, amounts in minor units, the ledger transaction)."""
    return Settlement.objects.create(
        run=run, processor=run.processor, report_date=run.report_date, batch_number=row.batch_number, **fields
    )


_BOOKERS: dict[str, Callable[[matching.Settle, ReconciliationRun], Settlement | None]] = {
    SettlementKind.CAPTURE: _book_capture,
    SettlementKind.REFUND: _book_refund,
    SettlementKind.FEE: _book_fee,
}


def settlement_book(*, item: matching.Settle, run: ReconciliationRun) -> Settlement | None:
    """Book one row that matching decided to settle (a capture, a refund or a processor fee, by `item.kind`) for
    `run`'s processor and day: post its ledger transaction and record its Settlement row, in the caller's
    transaction.

    Returns the new Settlement, or None when that capture, refund or fee row was already settled (by this or an
    earlier run): nothing is written then. Raises what ledger.services.transaction_post raises.
    """
    return _BOOKERS[item.kind](item, run)
