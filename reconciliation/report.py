"""Parsing a Settlement details report (the layout of Adyen's "Settlement details report", as the sandbox
acquirer writes it: docs/sandbox-acquirer.md) into rows with integer minor-unit amounts.

Amounts in the CSV are decimals in major units with the currency's ISO 4217 exponent (`10.00` EUR, `1000` JPY);
they become integers of minor units (1000, 1000) through Decimal, never floats. A malformed report raises
ReportError naming the line, and nothing is stored.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from ledger.errors import InvalidAmount
from ledger.money import currency_exponent

SETTLED = "Settled"
REFUNDED = "Refunded"
FEE = "Fee"
MERCHANT_PAYOUT = "MerchantPayout"

#: Columns this parser needs (the report has more; order does not matter).
REQUIRED_COLUMNS = (
    "Psp Reference",
    "Merchant Reference",
    "Type",
    "Modification Reference",
    "Gross Currency",
    "Gross Debit (GC)",
    "Gross Credit (GC)",
    "Net Currency",
    "Net Debit (NC)",
    "Net Credit (NC)",
    "Commission (NC)",
    "Markup (NC)",
    "Scheme Fees (NC)",
    "Interchange (NC)",
    "Batch Number",
)


class ReportError(ValueError):
    """The report cannot be read: missing columns, a malformed amount or currency (`line` is 1-based)."""

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line


@dataclass(frozen=True, kw_only=True)
class ReportRow:
    """One row. Amounts are minor units of `gross_currency` (gross) or `net_currency` (net and fees), None when
    the cell is empty. `line` is the row's 1-based line in the file (the header is line 1)."""

    line: int
    type: str
    psp_reference: str
    merchant_reference: str
    modification_reference: str
    creation_date: str
    gross_currency: str
    gross_debit: int | None
    gross_credit: int | None
    net_currency: str
    net_debit: int | None
    net_credit: int | None
    commission: int | None
    markup: int | None
    scheme_fees: int | None
    interchange: int | None
    batch_number: int | None

    @property
    def fees(self) -> int:
        """Commission + Markup + Scheme Fees + Interchange, minor units (empty cells count 0)."""
        return sum(v or 0 for v in (self.commission, self.markup, self.scheme_fees, self.interchange))

    @property
    def gross(self) -> int | None:
        """The row's gross amount: Gross Credit for Settled rows, Gross Debit for Refunded rows, else None."""
        if self.type == SETTLED:
            return self.gross_credit
        if self.type == REFUNDED:
            return self.gross_debit
        return None

    @property
    def key(self) -> str:
        """`<Type>:<Psp Reference>:<Modification Reference>`: identifies the row (two equal keys are duplicates)."""
        return f"{self.type}:{self.psp_reference}:{self.modification_reference}"


def to_minor_units(text: str, currency: str, *, line: int) -> int | None:
    """`"10.35"` in `currency` → 1035 (minor units); "" → None. Raises ReportError for anything that is not a
    decimal with at most the currency's ISO 4217 exponent of decimal places, or an unknown currency."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        exponent = currency_exponent(currency)
    except InvalidAmount as exc:
        raise ReportError(f"unknown currency {currency!r}", line=line) from exc
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise ReportError(f"{text!r} is not an amount", line=line) from exc
    minor = value.scaleb(exponent)
    if not value.is_finite() or minor != minor.to_integral_value():
        raise ReportError(f"{text!r} has more than {exponent} decimal places for {currency}", line=line)
    return int(minor)


def format_minor_units(amount: int, currency: str) -> str:
    """1035 EUR → `"10.35"`; -1035 → `"-10.35"`; 1000 JPY → `"1000"` (for people; machines get integers)."""
    exponent = currency_exponent(currency)
    sign = "-" if amount < 0 else ""
    whole, fraction = divmod(abs(amount), 10**exponent)
    return f"{sign}{whole}.{fraction:0{exponent}d}" if exponent else f"{sign}{whole}"


def parse(content: bytes) -> list[ReportRow]:
    """Parse the CSV (UTF-8, optional BOM, header row first, CRLF or LF). Raises ReportError."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ReportError("the report is not UTF-8") from exc
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ReportError(f"missing columns: {', '.join(missing)}", line=1)
    rows: list[ReportRow] = []
    for record in reader:
        line = reader.line_num
        if not any((v or "").strip() for v in record.values() if isinstance(v, str)):
            continue  # a blank line
        gross_currency = (record["Gross Currency"] or "").strip().upper()
        net_currency = (record["Net Currency"] or "").strip().upper() or gross_currency

        def gross(column: str) -> int | None:
            return to_minor_units(record[column], gross_currency, line=line)  # noqa: B023 (called in this iteration)

        def net(column: str) -> int | None:
            return to_minor_units(record[column], net_currency, line=line)  # noqa: B023 (called in this iteration)

        batch = (record["Batch Number"] or "").strip()
        if batch and not batch.isdigit():
            raise ReportError(f"Batch Number {batch!r} is not a number", line=line)
        rows.append(
            ReportRow(
                line=line,
                type=(record["Type"] or "").strip(),
                psp_reference=(record["Psp Reference"] or "").strip(),
                merchant_reference=(record["Merchant Reference"] or "").strip(),
                modification_reference=(record["Modification Reference"] or "").strip(),
                creation_date=(record.get("Creation Date") or "").strip(),
                gross_currency=gross_currency,
                gross_debit=gross("Gross Debit (GC)"),
                gross_credit=gross("Gross Credit (GC)"),
                net_currency=net_currency,
                net_debit=net("Net Debit (NC)"),
                net_credit=net("Net Credit (NC)"),
                commission=net("Commission (NC)"),
                markup=net("Markup (NC)"),
                scheme_fees=net("Scheme Fees (NC)"),
                interchange=net("Interchange (NC)"),
                batch_number=int(batch) if batch else None,
            )
        )
    return rows
