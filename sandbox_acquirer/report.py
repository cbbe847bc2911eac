"""Settlement details report (the layout of Adyen's "Settlement details report") as CSV.

Pure functions: the caller passes the day's captures and refunds (see
:meth:`sandbox_acquirer.store.Session.settlement_entries`) and gets CSV bytes back.
All maths is on ``int`` minor units; amounts are rendered in major units with the currency's
ISO 4217 exponent, without floats.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date

from .money import basis_points_half_up, currency_exponent, format_minor_units
from .store import micros_to_datetime

#: Header row, exactly as in the spec.
HEADER: tuple[str, ...] = (
    "Company Account",
    "Merchant Account",
    "Psp Reference",
    "Merchant Reference",
    "Payment Method",
    "Creation Date",
    "TimeZone",
    "Type",
    "Modification Reference",
    "Gross Currency",
    "Gross Debit (GC)",
    "Gross Credit (GC)",
    "Exchange Rate",
    "Net Currency",
    "Net Debit (NC)",
    "Net Credit (NC)",
    "Commission (NC)",
    "Markup (NC)",
    "Scheme Fees (NC)",
    "Interchange (NC)",
    "Batch Number",
)

#: Issuing countries (ISO 3166-1 alpha-2) with the low interchange rate: the EU 27, the other
#: EEA members (Iceland, Liechtenstein, Norway) and the United Kingdom.
EEA_AND_GB: frozenset[str] = frozenset(
    {
        "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE",
        "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE",
        "IS", "LI", "NO",
        "GB",
    }
)  # fmt: skip

#: Fixed commission per capture and per refund, minor units.
COMMISSION_MINOR_UNITS = 10
#: Markup on captures, basis points (0.60 %).
MARKUP_BPS = 60
#: Scheme fees on captures, basis points (0.13 %).
SCHEME_FEES_BPS = 13
#: Interchange on captures of cards issued in :data:`EEA_AND_GB`, basis points (0.30 %).
INTERCHANGE_EEA_BPS = 30
#: Interchange on captures of other cards, basis points (1.80 %).
INTERCHANGE_OTHER_BPS = 180
#: Daily processing fee per currency with activity, minor units.
DAILY_FEE_MINOR_UNITS = 25
#: Batch 1 is this day; batch ``n`` is ``n - 1`` days later.
BATCH_EPOCH = date(2020, 1, 1)


def batch_number(day: date) -> int:
    """Return the batch number of ``day``: its 1-based ordinal since 2020-01-01 (2020-01-01 -> 1,
    2020-01-02 -> 2). Raises ``ValueError`` for days before 2020-01-01."""
    if day < BATCH_EPOCH:
        raise ValueError("no settlement batches before 2020-01-01")
    return (day - BATCH_EPOCH).days + 1


@dataclass(frozen=True)
class SettledFees:
    """Fees on one capture, each an ``int`` in minor units (already rounded half-up)."""

    commission: int
    markup: int
    scheme_fees: int
    interchange: int

    @property
    def total(self) -> int:
        """Sum of the four fees, minor units."""
        return self.commission + self.markup + self.scheme_fees + self.interchange


def settled_fees(amount: int, country: str) -> SettledFees:
    """Return the fees on a capture of ``amount`` (int minor units, >= 0) of a card issued in
    ``country`` (ISO 3166-1 alpha-2). Example: ``settled_fees(10000, "GB")`` ->
    commission 10, markup 60, scheme fees 13, interchange 30 (net 9887)."""
    interchange_bps = INTERCHANGE_EEA_BPS if country in EEA_AND_GB else INTERCHANGE_OTHER_BPS
    return SettledFees(
        commission=COMMISSION_MINOR_UNITS,
        markup=basis_points_half_up(amount, MARKUP_BPS),
        scheme_fees=basis_points_half_up(amount, SCHEME_FEES_BPS),
        interchange=basis_points_half_up(amount, interchange_bps),
    )


def _creation_date(micros: int) -> str:
    return micros_to_datetime(micros).strftime("%Y-%m-%d %H:%M:%S")


def build_settlement_report(day: date, entries: list[dict], company_account: str, merchant_account: str) -> bytes:
    """Return the Settlement details report for UTC ``day`` as UTF-8 CSV bytes (CRLF line ends).

    ``entries`` are the day's captures and refunds, oldest first, as returned by
    ``Session.settlement_entries`` (dicts with ``kind``, ``modification_reference``, ``amount`` in
    int minor units, ``currency``, ``created_us``, ``psp_reference``, ``reference``,
    ``merchant_account``, ``brand``, ``country``). Output: the header row; one ``Settled`` row per
    capture and one ``Refunded`` row per refund, in the given order; then, per currency with
    activity (alphabetical), a ``Fee`` row (daily fee in Net Debit) and a ``MerchantPayout`` row
    (Settled net credits - Refunded net debits - Fee, in Net Debit, negative if the day is net
    negative). ``company_account``/``merchant_account`` fill the account columns (a capture/refund
    row shows its authorization's merchant account). Raises ``ValueError`` for ``day`` before
    2020-01-01 or an entry in a currency without an ISO 4217 exponent.
    """
    batch = batch_number(day)
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADER)
    payouts: dict[str, int] = {}

    for entry in entries:
        currency = entry["currency"]
        exponent = currency_exponent(currency)
        if exponent is None:
            raise ValueError(f"currency {currency!r} has no ISO 4217 exponent")

        def money(amount: int, _exponent: int = exponent) -> str:
            return format_minor_units(amount, _exponent)

        amount = entry["amount"]
        common = {
            "Company Account": company_account,
            "Merchant Account": entry["merchant_account"],
            "Psp Reference": entry["psp_reference"],
            "Merchant Reference": entry["reference"],
            "Payment Method": entry["brand"],
            "Creation Date": _creation_date(entry["created_us"]),
            "TimeZone": "UTC",
            "Modification Reference": entry["modification_reference"],
            "Gross Currency": currency,
            "Exchange Rate": "1",
            "Net Currency": currency,
            "Batch Number": str(batch),
        }
        if entry["kind"] == "capture":
            fees = settled_fees(amount, entry["country"])
            net = amount - fees.total
            row = {
                **common,
                "Type": "Settled",
                "Gross Credit (GC)": money(amount),
                "Net Credit (NC)": money(net),
                "Commission (NC)": money(fees.commission),
                "Markup (NC)": money(fees.markup),
                "Scheme Fees (NC)": money(fees.scheme_fees),
                "Interchange (NC)": money(fees.interchange),
            }
            payouts[currency] = payouts.get(currency, 0) + net
        elif entry["kind"] == "refund":
            net_debit = amount + COMMISSION_MINOR_UNITS
            row = {
                **common,
                "Type": "Refunded",
                "Gross Debit (GC)": money(amount),
                "Net Debit (NC)": money(net_debit),
                "Commission (NC)": money(COMMISSION_MINOR_UNITS),
            }
            payouts[currency] = payouts.get(currency, 0) - net_debit
        else:
            continue
        writer.writerow([row.get(column, "") for column in HEADER])

    day_end = f"{day.isoformat()} 23:59:59"
    for currency in sorted(payouts):
        exponent = currency_exponent(currency) or 0  # not None: every entry was checked above
        net = payouts[currency] - DAILY_FEE_MINOR_UNITS
        for kind, reference, amount in (
            ("Fee", f"fee-{batch}-{currency}", DAILY_FEE_MINOR_UNITS),
            ("MerchantPayout", f"payout-{batch}-{currency}", net),
        ):
            row = {
                "Company Account": company_account,
                "Merchant Account": merchant_account,
                "Creation Date": day_end,
                "TimeZone": "UTC",
                "Type": kind,
                "Modification Reference": reference,
                "Gross Currency": currency,
                "Exchange Rate": "1",
                "Net Currency": currency,
                "Net Debit (NC)": format_minor_units(amount, exponent),
                "Batch Number": str(batch),
            }
            writer.writerow([row.get(column, "") for column in HEADER])
    return buffer.getvalue().encode("utf-8")
