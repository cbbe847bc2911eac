"""Reconciliation write services: reconcile one processor's settlement report for one day; resolve a discrepancy.

`reconcile` reads the report (fetched through the processor adapter, or given), matches its rows
(reconciliation.matching) and, per batch (`Batch Number`) in one database transaction:
- settles each matched capture of a payment that is not held or voided: one ledger transaction (ledger.services,
  idempotency key `<payment id>:settlement`) moving the captured amount from the merchant's `pending` to their
  `available` account and booking the row's fees (Commission + Markup + Scheme Fees + Interchange) from the
  platform's `processor_receivable` to its `processor_fees` expense account (docs/ledger.md);
- settles each matched refund (`<refund id>:refund_settlement`): the refunded amount leaves the merchant's
  `available` for their `pending` account (where the refund was taken from), with the row's commission;
- books each `Fee` row (the processor's daily fee) the same way;
- records each discrepancy once (unique per processor, day, kind and subject).
A last transaction records captured payments missing from the report and closes the day's open discrepancies
this report no longer shows. Everything is keyed, so running the same report again writes nothing.

Runs of one processor and day are serialized by a PostgreSQL advisory lock; payments are locked (FOR UPDATE,
payments.settlement) while settled, so a hold placed concurrently is either seen or placed after settlement.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import structlog
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from ledger import services as ledger_services
from ledger.contracts import AccountPurpose, AccountRef, Leg, Side
from payments.audit import SYSTEM, Actor, audit_record_write, clean_reason
from payments.postings import merchant_owner, platform_owner
from payments.processors import get_processor
from payments.settlement import (
    SettlementPayment,
    payments_captured_between,
    payments_lock_for_settlement,
    refunds_for_settlement,
)
from reconciliation import matching
from reconciliation.errors import DiscrepancyNotFound, DiscrepancyNotOpen
from reconciliation.models import (
    Discrepancy,
    DiscrepancyStatus,
    ReconciliationRun,
    Settlement,
    SettlementKind,
)
from reconciliation.report import FEE, MERCHANT_PAYOUT, REFUNDED, SETTLED, ReportRow, parse

log = structlog.get_logger(__name__)

SETTLEMENT_CODE = "settlement"
REFUND_SETTLEMENT_CODE = "refund_settlement"
PROCESSOR_FEE_CODE = "processor_fee"


@dataclass(kw_only=True)
class Changes:
    """What a run changed: payments settled, refunds and fee rows booked, discrepancies opened, reopened,
    updated (amounts or status on either side moved) and closed."""

    settled: int = 0
    refunds_booked: int = 0
    fees_booked: int = 0
    discrepancies_opened: int = 0
    discrepancies_reopened: int = 0
    discrepancies_updated: int = 0
    discrepancies_closed: int = 0

    @property
    def any(self) -> bool:
        """True when the run wrote anything."""
        return any(asdict(self).values())


@dataclass(kw_only=True)
class ReconcileResult:
    """The outcome of `reconcile`. Amounts are integers in minor units, keyed by currency.

    `rows`: row count per Type. `totals[currency]`: report sums (`settled_gross`, `settled_fees`, `settled_net`,
    `refunded_gross`, `refunded_fees`, `processing_fees`, `payout`) and `settled_now` (gross settled by this run).
    `open_discrepancies`: the day's open discrepancies after the run (all runs). `run_id` is None for a dry run.
    """

    processor: str
    day: dt.date
    run_id: int | None
    report_sha256: str
    source: str
    dry_run: bool
    rows: dict[str, int]
    totals: dict[str, dict[str, int]]
    changes: Changes
    settled_payment_ids: list[str] = field(default_factory=list)
    open_discrepancies: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (dates ISO 8601) for `reconcile --format json`."""
        body = asdict(self)
        body["day"] = self.day.isoformat()
        return body


@dataclass(kw_only=True)
class _State:
    processor: str
    day: dt.date
    sha: str
    source: str
    report: bytes
    row_count: int
    changes: Changes = field(default_factory=Changes)
    seen: set[str] = field(default_factory=set)
    duplicates: set[str] = field(default_factory=set)
    found_keys: set[tuple[str, str]] = field(default_factory=set)
    reported_psp_references: set[str] = field(default_factory=set)
    settled_payment_ids: list[str] = field(default_factory=list)
    settled_now: Counter[str] = field(default_factory=Counter)


def discrepancy_to_dict(d: Discrepancy) -> dict[str, Any]:
    """A discrepancy for output: id, kind, key, references, each side's amount (minor units) and currency, our
    status, detail, status and when it was first found."""
    return {
        "id": d.pk,
        "kind": d.kind,
        "key": d.key,
        "payment_id": d.payment_id,
        "row_type": d.row_type,
        "psp_reference": d.psp_reference,
        "modification_reference": d.modification_reference,
        "report_amount": d.report_amount,
        "report_currency": d.report_currency,
        "our_amount": d.our_amount,
        "our_currency": d.our_currency,
        "our_status": d.our_status,
        "detail": d.detail,
        "status": d.status,
        "created_at": d.created_at.isoformat(),
    }


def processor_mode(processor: str) -> str:
    """The mode (`test`/`live`) of a processor's own fees: PROCESSORS[name]["MODE"], `test` when unset (the
    sandbox acquirer)."""
    return str(settings.PROCESSORS[processor].get("MODE", "test"))


@contextmanager
def _advisory_lock(name: str) -> Iterator[None]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(hashtext(%s))", [name])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(hashtext(%s))", [name])


def _run(state: _State) -> ReconciliationRun:
    run, _ = ReconciliationRun.objects.get_or_create(
        processor=state.processor,
        report_date=state.day,
        report_sha256=state.sha,
        defaults={"source": state.source[:500], "report": state.report, "row_count": state.row_count},
    )
    return run


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


def _settle_capture(item: matching.Settle, run: ReconciliationRun, state: _State) -> None:
    payment: SettlementPayment = item.payment  # type: ignore[assignment]
    row = item.row
    if Settlement.objects.filter(kind=SettlementKind.CAPTURE, payment_id=payment.payment_id).exists():
        return
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
        description=f"{state.processor} batch {row.batch_number} {row.modification_reference}"[:255],
    )
    Settlement.objects.create(
        run=run,
        processor=state.processor,
        report_date=state.day,
        batch_number=row.batch_number,
        kind=SettlementKind.CAPTURE,
        payment_id=payment.payment_id,
        psp_reference=row.psp_reference,
        modification_reference=row.modification_reference or row.psp_reference,
        currency=payment.currency,
        gross_amount=gross,
        fees=row.fees,
        ledger_transaction_id=txn.id,
    )
    state.changes.settled += 1
    state.settled_payment_ids.append(payment.payment_id)
    state.settled_now[payment.currency] += gross


def _settle_refund(item: matching.Settle, run: ReconciliationRun, state: _State) -> None:
    refund = item.refund
    row = item.row
    assert refund is not None
    if Settlement.objects.filter(
        processor=state.processor, kind=SettlementKind.REFUND, modification_reference=row.modification_reference
    ).exists():
        return
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
        reference=f"payment:{refund.payment_id}",
        idempotency_key=f"{refund.refund_id}:refund_settlement",
        legs=legs,
        description=f"{state.processor} batch {row.batch_number} {row.modification_reference}"[:255],
    )
    Settlement.objects.create(
        run=run,
        processor=state.processor,
        report_date=state.day,
        batch_number=row.batch_number,
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
    state.changes.refunds_booked += 1


def _settle_fee(item: matching.Settle, run: ReconciliationRun, state: _State) -> None:
    row = item.row
    reference = row.modification_reference or f"fee-{row.batch_number}-{row.net_currency}"
    if Settlement.objects.filter(
        processor=state.processor, kind=SettlementKind.FEE, modification_reference=reference
    ).exists():
        return
    amount = row.net_debit or 0
    legs = _fee_legs(mode=processor_mode(state.processor), currency=row.net_currency, amount=amount)
    txn = None
    if legs:
        txn = ledger_services.transaction_post(
            code=PROCESSOR_FEE_CODE,
            reference=f"settlement:{state.processor}:{row.batch_number}",
            idempotency_key=f"{state.processor}:{reference}:processor_fee",
            legs=legs,
            description=f"{state.processor} daily fee, batch {row.batch_number}"[:255],
        )
    Settlement.objects.create(
        run=run,
        processor=state.processor,
        report_date=state.day,
        batch_number=row.batch_number,
        kind=SettlementKind.FEE,
        modification_reference=reference,
        currency=row.net_currency,
        gross_amount=0,
        fees=amount,
        ledger_transaction_id=txn.id,
    )
    state.changes.fees_booked += 1


_SETTLERS: dict[str, Callable[[matching.Settle, ReconciliationRun, _State], None]] = {
    SettlementKind.CAPTURE: _settle_capture,
    SettlementKind.REFUND: _settle_refund,
    SettlementKind.FEE: _settle_fee,
}


def _record(found: matching.Found, run: ReconciliationRun, state: _State) -> None:
    state.found_keys.add((found.kind, found.key))
    row = found.row
    values: dict[str, Any] = {
        "payment_id": found.payment_id,
        "row_type": row.type if row else "",
        "psp_reference": row.psp_reference if row else found.psp_reference,
        "modification_reference": row.modification_reference if row else "",
        "report_amount": found.report_amount,
        "report_currency": found.report_currency,
        "our_amount": found.our_amount,
        "our_currency": found.our_currency,
        "our_status": found.our_status[:32],
        "detail": found.detail[:500],
    }
    existing = (
        Discrepancy.objects.select_for_update()
        .filter(processor=state.processor, report_date=state.day, kind=found.kind, key=found.key)
        .first()
    )
    if existing is None:
        Discrepancy.objects.create(
            processor=state.processor, report_date=state.day, kind=found.kind, key=found.key, run=run, **values
        )
        state.changes.discrepancies_opened += 1
        return
    changed = {k: v for k, v in values.items() if getattr(existing, k) != v}
    if existing.status == DiscrepancyStatus.RESOLVED:
        if existing.resolved_by != SYSTEM.username:
            return  # a person resolved it: their decision stands
        changed.update(status=DiscrepancyStatus.OPEN, resolved_at=None, resolved_by="", resolution_note="")
        state.changes.discrepancies_reopened += 1
    elif changed:
        state.changes.discrepancies_updated += 1
    if changed:
        for name, value in changed.items():
            setattr(existing, name, value)
        existing.save(update_fields=list(changed))


def _batch(rows: list[ReportRow], state: _State) -> None:
    run = _run(state)
    payments = payments_lock_for_settlement(
        processor=state.processor, psp_references=[r.psp_reference for r in rows if r.type == SETTLED]
    )
    refunds = refunds_for_settlement(
        processor=state.processor, psp_references=[r.modification_reference for r in rows if r.type == REFUNDED]
    )
    settled_on = dict(
        Settlement.objects.filter(
            kind=SettlementKind.CAPTURE, payment_id__in=[p.payment_id for p in payments.values()]
        ).values_list("payment_id", "report_date")
    )
    outcome = matching.match_rows(
        rows,
        day=state.day,
        payments=payments,
        refunds=refunds,
        settled_on=settled_on,
        seen=state.seen,
        duplicates=state.duplicates,
    )
    for item in outcome.settle:
        _SETTLERS[item.kind](item, run, state)
    for found in outcome.found:
        _record(found, run, state)
    state.reported_psp_references |= {r.psp_reference for r in rows if r.type == SETTLED}


def _finish(state: _State, *, grace_seconds: float) -> list[dict[str, Any]]:
    run = _run(state)
    start, end = matching.missing_window(state.day, grace_seconds=grace_seconds)
    candidates = payments_captured_between(processor=state.processor, start=start, end=end)
    settled_on = dict(
        Settlement.objects.filter(
            kind=SettlementKind.CAPTURE, payment_id__in=[p.payment_id for p in candidates]
        ).values_list("payment_id", "report_date")
    )
    for found in matching.find_missing(
        candidates, reported_psp_references=state.reported_psp_references, settled_on=settled_on, day=state.day
    ):
        _record(found, run, state)
    now = timezone.now()
    for stale in Discrepancy.objects.select_for_update().filter(
        processor=state.processor, report_date=state.day, status=DiscrepancyStatus.OPEN
    ):
        if (stale.kind, stale.key) in state.found_keys:
            continue
        note = f"Closed: no longer found by run #{run.pk} (report sha256 {state.sha[:12]})."
        stale.status = DiscrepancyStatus.RESOLVED
        stale.resolved_at = now
        stale.resolved_by = SYSTEM.username
        stale.resolution_note = note
        stale.save(update_fields=["status", "resolved_at", "resolved_by", "resolution_note"])
        audit_record_write(
            actor=SYSTEM,
            action="reconciliation.discrepancy_close",
            object_type="discrepancy",
            object_id=str(stale.pk),
            payment_id=stale.payment_id,
            reason=note,
            data={"kind": stale.kind, "key": stale.key, "report_date": state.day.isoformat()},
        )
        state.changes.discrepancies_closed += 1
    return [
        discrepancy_to_dict(d)
        for d in Discrepancy.objects.filter(
            processor=state.processor, report_date=state.day, status=DiscrepancyStatus.OPEN
        ).order_by("id")
    ]


def _totals(rows: list[ReportRow]) -> dict[str, dict[str, int]]:
    totals: dict[str, dict[str, int]] = defaultdict(
        lambda: dict.fromkeys(
            (
                "settled_gross",
                "settled_fees",
                "settled_net",
                "refunded_gross",
                "refunded_fees",
                "processing_fees",
                "payout",
                "settled_now",
            ),
            0,
        )
    )
    for row in rows:
        if row.type == SETTLED:
            t = totals[row.gross_currency]
            t["settled_gross"] += row.gross_credit or 0
            t["settled_fees"] += row.fees
            t["settled_net"] += row.net_credit or 0
        elif row.type == REFUNDED:
            t = totals[row.gross_currency]
            t["refunded_gross"] += row.gross_debit or 0
            t["refunded_fees"] += row.fees
        elif row.type == FEE:
            totals[row.net_currency]["processing_fees"] += row.net_debit or 0
        elif row.type == MERCHANT_PAYOUT:
            totals[row.net_currency]["payout"] += row.net_debit or 0
    return dict(totals)


def _batches(rows: list[ReportRow]) -> list[list[ReportRow]]:
    grouped: dict[int | None, list[ReportRow]] = {}
    for row in rows:
        grouped.setdefault(row.batch_number, []).append(row)
    return list(grouped.values())


def reconcile(
    *,
    day: dt.date,
    processor: str | None = None,
    report: bytes | None = None,
    source: str = "",
    dry_run: bool = False,
) -> ReconcileResult:
    """Reconcile `processor`'s (default DEFAULT_PROCESSOR) settlement report of UTC `day` (see the module).

    `report`: the CSV bytes; when None it is fetched with `get_processor(processor).settlement_report(day)`.
    `dry_run`: do everything in one transaction and roll it back (the result says what would change).
    Captures recorded within RECONCILIATION_MISSING_GRACE_SECONDS before midnight may be in the next day's
    report (matching.missing_window). Raises payments.processors.base.ProcessorError when the report cannot be
    fetched, reconciliation.report.ReportError when it cannot be parsed, KeyError for an unknown processor;
    nothing is written then.
    """
    processor = processor or settings.DEFAULT_PROCESSOR
    _ = settings.PROCESSORS[processor]  # KeyError for an unknown processor, before anything runs
    if report is None:
        report = get_processor(processor).settlement_report(day)
        source = source or "processor"
    rows = parse(report)
    sha = hashlib.sha256(report).hexdigest()
    state = _State(processor=processor, day=day, sha=sha, source=source or "given", report=report, row_count=len(rows))
    grace = float(settings.RECONCILIATION_MISSING_GRACE_SECONDS)

    def step() -> AbstractContextManager[Any]:
        return transaction.atomic() if dry_run else transaction.atomic(durable=True)

    def body() -> list[dict[str, Any]]:
        with _advisory_lock(f"reconcile:{processor}:{day.isoformat()}"):
            for batch in _batches(rows):
                with step():  # one database transaction per batch
                    _batch(batch, state)
            with step():
                return _finish(state, grace_seconds=grace)

    if dry_run:
        with transaction.atomic(durable=True):
            open_discrepancies = body()
            transaction.set_rollback(True)
        run_id = None
    else:
        open_discrepancies = body()
        run_id = ReconciliationRun.objects.get(processor=processor, report_date=day, report_sha256=sha).pk
    totals = _totals(rows)
    for currency, amount in state.settled_now.items():
        totals.setdefault(currency, {}).update(settled_now=amount)
    result = ReconcileResult(
        processor=processor,
        day=day,
        run_id=run_id,
        report_sha256=sha,
        source=state.source,
        dry_run=dry_run,
        rows=dict(Counter(r.type for r in rows)),
        totals=totals,
        changes=state.changes,
        settled_payment_ids=state.settled_payment_ids,
        open_discrepancies=open_discrepancies,
    )
    log.info(
        "reconciliation.done",
        processor=processor,
        day=day.isoformat(),
        run_id=run_id,
        dry_run=dry_run,
        changes=asdict(state.changes),
        open_discrepancies=len(open_discrepancies),
    )
    return result


@transaction.atomic(durable=True)
def discrepancy_resolve(*, discrepancy_id: int, actor: Actor, note: str) -> Discrepancy:
    """Resolve an open discrepancy with a person's note, audited in the same transaction. Nothing is deleted.

    Raises DiscrepancyNotFound, DiscrepancyNotOpen (already resolved), payments.errors.ReasonRequired (empty
    note).
    """
    note = clean_reason(note)
    discrepancy = Discrepancy.objects.select_for_update().filter(pk=discrepancy_id).first()
    if discrepancy is None:
        raise DiscrepancyNotFound(f"No such discrepancy: {discrepancy_id}")
    if discrepancy.status != DiscrepancyStatus.OPEN:
        raise DiscrepancyNotOpen(f"Discrepancy {discrepancy_id} is already {discrepancy.status}.")
    discrepancy.status = DiscrepancyStatus.RESOLVED
    discrepancy.resolved_at = timezone.now()
    discrepancy.resolved_by = actor.username
    discrepancy.resolution_note = note
    discrepancy.save(update_fields=["status", "resolved_at", "resolved_by", "resolution_note"])
    audit_record_write(
        actor=actor,
        action="reconciliation.discrepancy_resolve",
        object_type="discrepancy",
        object_id=str(discrepancy.pk),
        payment_id=discrepancy.payment_id,
        reason=note,
        data={"kind": discrepancy.kind, "key": discrepancy.key, "report_date": discrepancy.report_date.isoformat()},
    )
    return discrepancy
