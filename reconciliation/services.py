"""Reconciliation's run use case: reconcile one processor's settlement report for one day.

`reconcile` reads the report (fetched through the processor adapter, or given), matches its rows
(reconciliation.matching) and, per batch (`Batch Number`) in one database transaction:
- books each matched capture of a payment that is not held or voided, each matched refund and each `Fee` row (the
  processor's daily fee) in the ledger (reconciliation.booking);
- records each discrepancy once (unique per processor, day, kind and subject: reconciliation.discrepancies).
A last transaction records captured payments missing from the report and closes the day's open discrepancies
this report no longer shows. Everything is keyed, so running the same report again writes nothing.

Runs of one processor and day are serialized by a PostgreSQL advisory lock; payments are locked (FOR UPDATE,
payments.selectors) while settled, so a hold placed concurrently is either seen or placed after settlement.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import structlog
from django.conf import settings
from django.db import connection, transaction

from payments.processors import get_processor
from payments.selectors import (
    payments_captured_between,
    payments_lock_for_settlement,
    refunds_for_settlement,
)
from reconciliation import matching
from reconciliation.booking import settlement_book
from reconciliation.discrepancies import (
    Recorded,
    discrepancies_close_unfound,
    discrepancy_list_open,
    discrepancy_record,
)
from reconciliation.models import ReconciliationRun, Settlement, SettlementKind
from reconciliation.report import FEE, MERCHANT_PAYOUT, REFUNDED, SETTLED, ReportRow, parse

log = structlog.get_logger(__name__)


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


def _record(found: matching.Found, run: ReconciliationRun, state: _State) -> None:
    state.found_keys.add((found.kind, found.key))
    recorded = discrepancy_record(found=found, run=run)
    if recorded is Recorded.OPENED:
        state.changes.discrepancies_opened += 1
    elif recorded is Recorded.REOPENED:
        state.changes.discrepancies_reopened += 1
    elif recorded is Recorded.UPDATED:
        state.changes.discrepancies_updated += 1


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
        settlement = settlement_book(item=item, run=run)
        if settlement is None:
            continue  # settled before: nothing written
        if settlement.kind == SettlementKind.CAPTURE:
            state.changes.settled += 1
            state.settled_payment_ids.append(settlement.payment_id)
            state.settled_now[settlement.currency] += settlement.gross_amount
        elif settlement.kind == SettlementKind.REFUND:
            state.changes.refunds_booked += 1
        else:
            state.changes.fees_booked += 1
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
    state.changes.discrepancies_closed += discrepancies_close_unfound(run=run, found_keys=state.found_keys)
    return discrepancy_list_open(processor=state.processor, day=state.day)


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
