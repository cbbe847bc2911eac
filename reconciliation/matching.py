"""Matching report rows to our payments and refunds: pure functions from data to decisions (no database).

Each `Settled` row is matched to a payment by `Psp Reference` (the authorization's PSP reference), each
`Refunded` row to a refund by `Modification Reference` (the refund's own PSP reference). A row is settled when
nothing is wrong with it; otherwise it yields exactly one discrepancy, the first that applies:

1. duplicate_row: the same (Type, Psp Reference, Modification Reference) appeared earlier in the report, or the
   payment was already settled from another day's report;
2. unknown_row: no payment (Settled) or refund (Refunded) of ours has that PSP reference;
3. held_or_voided_settled: Settled, but the payment is held (a hold not released) or voided;
4. status_mismatch: Settled but the payment was never captured or its capture reference differs; Refunded but
   the refund did not succeed;
5. currency_mismatch: Gross Currency differs from ours;
6. amount_mismatch: Gross Credit (Settled) / Gross Debit (Refunded) differs from the captured / refunded amount.

`Fee` rows are settled (booked) too; `MerchantPayout` rows are informational; other row types are ignored and
counted. Captured payments of the day absent from the report are `missing_from_report` (find_missing).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from payments.contracts import SettlementPayment, SettlementRefund
from reconciliation.models import DiscrepancyKind, SettlementKind
from reconciliation.report import FEE, MERCHANT_PAYOUT, REFUNDED, SETTLED, ReportRow


@dataclass(frozen=True, kw_only=True)
class Found:
    """A discrepancy to record: its kind and key, the row and payment involved, and each side's amount (minor
    units), currency and our status."""

    kind: str
    key: str
    detail: str
    row: ReportRow | None = None
    payment_id: str | None = None
    report_amount: int | None = None
    report_currency: str = ""
    our_amount: int | None = None
    our_currency: str = ""
    our_status: str = ""
    psp_reference: str = ""


@dataclass(frozen=True, kw_only=True)
class Settle:
    """A row to settle: a capture (with its payment), a refund (with its refund) or a processor fee."""

    kind: str
    row: ReportRow
    payment: SettlementPayment | None = None
    refund: SettlementRefund | None = None


@dataclass(kw_only=True)
class Outcome:
    """What the rows of a report come to: settlements, discrepancies, and rows that were only counted."""

    settle: list[Settle] = field(default_factory=list)
    found: list[Found] = field(default_factory=list)
    informational: list[ReportRow] = field(default_factory=list)
    ignored: list[ReportRow] = field(default_factory=list)


def _row_found(kind: str, row: ReportRow, detail: str, **ours: object) -> Found:
    return Found(
        kind=kind,
        key=row.key,
        detail=detail[:500],
        row=row,
        report_amount=row.gross if row.type in (SETTLED, REFUNDED) else row.net_debit,
        report_currency=row.gross_currency,
        **ours,  # type: ignore[arg-type]
    )


def _ours(payment: SettlementPayment) -> dict[str, object]:
    return {
        "payment_id": payment.payment_id,
        "our_amount": payment.amount_captured,
        "our_currency": payment.currency,
        "our_status": payment.status + (" (held)" if payment.held else ""),
    }


def _match_settled(
    row: ReportRow, payment: SettlementPayment | None, *, settled_on: dt.date | None, day: dt.date
) -> Settle | Found:
    if payment is None:
        return _row_found(DiscrepancyKind.UNKNOWN_ROW, row, f"no payment of ours has PSP reference {row.psp_reference}")
    ours = _ours(payment)
    if settled_on is not None and settled_on != day:
        return _row_found(
            DiscrepancyKind.DUPLICATE_ROW, row, f"already settled from the report of {settled_on}", **ours
        )
    if payment.held or payment.voided:
        why = "voided" if payment.voided else "on hold"
        return _row_found(
            DiscrepancyKind.HELD_OR_VOIDED_SETTLED, row, f"reported settled but {why}: not settled", **ours
        )
    if not payment.captured:
        return _row_found(DiscrepancyKind.STATUS_MISMATCH, row, f"reported settled but {payment.status}", **ours)
    if payment.capture_psp_reference and row.modification_reference != payment.capture_psp_reference:
        return _row_found(
            DiscrepancyKind.STATUS_MISMATCH,
            row,
            f"capture reference {row.modification_reference} is not ours ({payment.capture_psp_reference})",
            **ours,
        )
    if row.gross_currency != payment.currency:
        return _row_found(
            DiscrepancyKind.CURRENCY_MISMATCH, row, f"report {row.gross_currency}, ours {payment.currency}", **ours
        )
    if row.gross_credit != payment.amount_captured:
        return _row_found(
            DiscrepancyKind.AMOUNT_MISMATCH,
            row,
            f"report {row.gross_credit}, captured {payment.amount_captured} (minor units)",
            **ours,
        )
    return Settle(kind=SettlementKind.CAPTURE, row=row, payment=payment)


def _match_refunded(row: ReportRow, refund: SettlementRefund | None) -> Settle | Found:
    if refund is None:
        return _row_found(
            DiscrepancyKind.UNKNOWN_ROW, row, f"no refund of ours has PSP reference {row.modification_reference}"
        )
    ours = {
        "payment_id": refund.payment_id,
        "our_amount": refund.amount,
        "our_currency": refund.currency,
        "our_status": refund.status,
    }
    if not refund.succeeded or refund.payment_psp_reference != row.psp_reference:
        return _row_found(DiscrepancyKind.STATUS_MISMATCH, row, f"reported refunded but {refund.status}", **ours)
    if row.gross_currency != refund.currency:
        return _row_found(
            DiscrepancyKind.CURRENCY_MISMATCH, row, f"report {row.gross_currency}, ours {refund.currency}", **ours
        )
    if row.gross_debit != refund.amount:
        return _row_found(
            DiscrepancyKind.AMOUNT_MISMATCH, row, f"report {row.gross_debit}, refunded {refund.amount}", **ours
        )
    return Settle(kind=SettlementKind.REFUND, row=row, refund=refund)


def match_rows(
    rows: Iterable[ReportRow],
    *,
    day: dt.date,
    payments: Mapping[str, SettlementPayment],
    refunds: Mapping[str, SettlementRefund],
    settled_on: Mapping[str, dt.date],
    seen: set[str] | None = None,
    duplicates: set[str] | None = None,
) -> Outcome:
    """Decide each row of the report of `day`.

    `payments`: ours by authorization PSP reference; `refunds`: ours by refund PSP reference; `settled_on`:
    payment id → the report date it was already settled from. Duplicates of one row yield one discrepancy.
    `seen`/`duplicates` (row keys, updated in place) carry duplicate detection across calls for one report
    (one call per batch).
    """
    outcome = Outcome()
    seen = set() if seen is None else seen
    duplicates = set() if duplicates is None else duplicates
    for row in rows:
        if row.key in seen:
            if row.key not in duplicates:
                duplicates.add(row.key)
                payment = payments.get(row.psp_reference) if row.type == SETTLED else None
                outcome.found.append(
                    _row_found(
                        DiscrepancyKind.DUPLICATE_ROW,
                        row,
                        f"row repeated in the report (line {row.line})",
                        **(_ours(payment) if payment else {}),
                    )
                )
            continue
        seen.add(row.key)
        if row.type == SETTLED:
            payment = payments.get(row.psp_reference)
            decision = _match_settled(
                row, payment, settled_on=settled_on.get(payment.payment_id) if payment else None, day=day
            )
        elif row.type == REFUNDED:
            decision = _match_refunded(row, refunds.get(row.modification_reference))
        elif row.type == FEE:
            decision = Settle(kind=SettlementKind.FEE, row=row)
        elif row.type == MERCHANT_PAYOUT:
            outcome.informational.append(row)
            continue
        else:
            outcome.ignored.append(row)
            continue
        if isinstance(decision, Settle):
            outcome.settle.append(decision)
        else:
            outcome.found.append(decision)
    return outcome


def missing_window(day: dt.date, *, grace_seconds: float) -> tuple[dt.datetime, dt.datetime]:
    """The captures a report of `day` must contain: recorded in [day − grace, day + 1 − grace) UTC.

    A capture recorded in the last `grace_seconds` of a day may be in that day's or the next day's report (the
    processor's clock and ours differ); it is looked for in the next day's run if absent from this one.
    """
    start = dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC) - dt.timedelta(seconds=grace_seconds)
    return start, start + dt.timedelta(days=1)


def find_missing(
    candidates: Iterable[SettlementPayment],
    *,
    reported_psp_references: set[str],
    settled_on: Mapping[str, dt.date],
    day: dt.date,
) -> list[Found]:
    """Captured payments (`candidates`, from missing_window) that no Settled row of the report names and that
    were not settled from another day's report."""
    found = []
    for payment in candidates:
        if payment.psp_reference in reported_psp_references:
            continue
        if payment.payment_id in settled_on and settled_on[payment.payment_id] != day:
            continue
        found.append(
            Found(
                kind=DiscrepancyKind.MISSING_FROM_REPORT,
                key=f"payment:{payment.payment_id}",
                detail=f"captured at {payment.captured_at:%Y-%m-%d %H:%M:%S} UTC, not in the report",
                psp_reference=payment.psp_reference,
                **_ours(payment),  # type: ignore[arg-type]
            )
        )
    return found
