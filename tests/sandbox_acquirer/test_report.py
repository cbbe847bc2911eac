"""Settlement details report over real HTTP: header, rows, fees, nets, payouts, currency exponents."""

from __future__ import annotations

import itertools
import re
import threading
from datetime import UTC, date, datetime, timedelta

import pytest

from sandbox_acquirer import resources
from sandbox_acquirer.store import datetime_to_micros

from .conftest import Api

SPEC_HEADER = (
    "Company Account, Merchant Account, Psp Reference, Merchant Reference, Payment Method, Creation Date, TimeZone, "
    "Type, Modification Reference, Gross Currency, Gross Debit (GC), Gross Credit (GC), Exchange Rate, Net Currency, "
    "Net Debit (NC), Net Credit (NC), Commission (NC), Markup (NC), Scheme Fees (NC), Interchange (NC), Batch Number"
)
COLUMNS = SPEC_HEADER.split(", ")


DAY = "2024-02-29"


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stamp every authorization/modification on 2024-02-29 from 10:00:00 UTC, one second apart,
    so the report tests never straddle UTC midnight (the server runs in this process)."""
    lock = threading.Lock()
    ticks = itertools.count()
    start = datetime(2024, 2, 29, 10, 0, 0, tzinfo=UTC)

    def utc_now() -> tuple[str, int]:
        with lock:
            moment = start + timedelta(seconds=next(ticks))
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), datetime_to_micros(moment)

    monkeypatch.setattr(resources, "utc_now", utc_now)  # the handlers that stamp rows look it up there


def _day(created_at: str) -> str:
    assert created_at[:10] == DAY
    return created_at[:10]


def _batch(day: str) -> str:
    return str((date.fromisoformat(day) - date(2020, 1, 1)).days + 1)


def _minor(value: str, exponent: int) -> int:
    """Parse a major-unit decimal string back to minor units, without floats."""
    sign = -1 if value.startswith("-") else 1
    whole, _, fraction = value.lstrip("-").partition(".")
    assert len(fraction) == exponent
    return sign * (int(whole) * 10**exponent + (int(fraction) if fraction else 0))


def test_empty_day_has_only_the_header(api: Api) -> None:
    response = api.get("/v1/reports/settlement", date="2021-03-04")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    assert response.text.splitlines() == [",".join(COLUMNS)]
    assert "batch_429" in response.headers["Content-Disposition"]


@pytest.mark.parametrize("value", [None, "", "2024-13-01", "2024-1-01", "20240101", "2019-12-31", "yesterday"])
def test_report_date_validation(api: Api, value: str | None) -> None:
    params = {} if value is None else {"date": value}
    response = api.get("/v1/reports/settlement", **params)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"


def test_settled_row_for_an_eea_card(api: Api) -> None:
    auth = api.authorize(token="tok_mastercard", amount=10000, currency="EUR", reference="order-eea")
    capture = api.capture(auth["psp_reference"], 10000)
    day = _day(capture["created_at"])
    response = api.get("/v1/reports/settlement", date=day)
    assert response.text.splitlines()[0] == ",".join(COLUMNS)
    rows = api.report(day)
    settled = [row for row in rows if row["Type"] == "Settled"]
    assert len(settled) == 1
    row = settled[0]
    assert row == {
        "Company Account": "ClearhouseCompany",
        "Merchant Account": "ClearhouseSandbox",
        "Psp Reference": auth["psp_reference"],
        "Merchant Reference": "order-eea",
        "Payment Method": "mastercard",
        "Creation Date": capture["created_at"][:19].replace("T", " "),  # 2024-02-29 10:00:01
        "TimeZone": "UTC",
        "Type": "Settled",
        "Modification Reference": capture["psp_reference"],
        "Gross Currency": "EUR",
        "Gross Debit (GC)": "",
        "Gross Credit (GC)": "100.00",
        "Exchange Rate": "1",
        "Net Currency": "EUR",
        "Net Debit (NC)": "",
        "Net Credit (NC)": "98.87",
        "Commission (NC)": "0.10",
        "Markup (NC)": "0.60",
        "Scheme Fees (NC)": "0.13",
        "Interchange (NC)": "0.30",
        "Batch Number": _batch(day),
    }
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", row["Creation Date"])
    fee = [r for r in rows if r["Type"] == "Fee"]
    payout = [r for r in rows if r["Type"] == "MerchantPayout"]
    assert [(r["Net Currency"], r["Net Debit (NC)"]) for r in fee] == [("EUR", "0.25")]
    assert [(r["Net Currency"], r["Net Debit (NC)"]) for r in payout] == [("EUR", "98.62")]
    assert payout[0]["Modification Reference"] == f"payout-{_batch(day)}-EUR"


def test_fees_half_up_and_non_eea_interchange(api: Api) -> None:
    # 5000 * 0.13 % = 6.5 -> 7 (half-up); US card: interchange 1.80 %.
    eea = api.authorize(token="tok_mastercard", amount=5000)
    capture = api.capture(eea["psp_reference"], 5000)
    us = api.authorize(token="tok_visa", amount=10000)
    api.capture(us["psp_reference"], 10000)
    rows = {row["Psp Reference"]: row for row in api.report(_day(capture["created_at"])) if row["Type"] == "Settled"}
    eea_row, us_row = rows[eea["psp_reference"]], rows[us["psp_reference"]]
    assert (eea_row["Markup (NC)"], eea_row["Scheme Fees (NC)"], eea_row["Interchange (NC)"]) == (
        "0.30",
        "0.07",
        "0.15",
    )
    assert eea_row["Net Credit (NC)"] == "49.38"
    assert us_row["Interchange (NC)"] == "1.80"
    assert us_row["Net Credit (NC)"] == "97.37"


def test_partial_capture_refunds_fee_and_payout(api: Api) -> None:
    first = api.authorize(token="tok_mastercard", amount=10000, reference="order-a")
    capture_a = api.capture(first["psp_reference"], 10000)
    refund = api.refund(first["psp_reference"], 2500)
    second = api.authorize(token="tok_visa", amount=20000, reference="order-b")
    capture_b = api.capture(second["psp_reference"], 10000)  # partial capture
    day = _day(capture_a["created_at"])
    assert _day(capture_b["created_at"]) == day
    rows = api.report(day)

    assert [row["Type"] for row in rows] == ["Settled", "Refunded", "Settled", "Fee", "MerchantPayout"]
    assert [row["Modification Reference"] for row in rows[:3]] == [
        capture_a["psp_reference"],
        refund["psp_reference"],
        capture_b["psp_reference"],
    ]
    refunded = rows[1]
    assert refunded["Psp Reference"] == first["psp_reference"]
    assert refunded["Merchant Reference"] == "order-a"
    assert (refunded["Gross Debit (GC)"], refunded["Gross Credit (GC)"]) == ("25.00", "")
    assert (refunded["Commission (NC)"], refunded["Net Debit (NC)"], refunded["Net Credit (NC)"]) == (
        "0.10",
        "25.10",
        "",
    )
    assert rows[2]["Gross Credit (GC)"] == "100.00"
    assert rows[2]["Net Credit (NC)"] == "97.37"

    credits = sum(_minor(r["Net Credit (NC)"], 2) for r in rows if r["Net Credit (NC)"] and r["Type"] == "Settled")
    debits = sum(_minor(r["Net Debit (NC)"], 2) for r in rows if r["Type"] == "Refunded")
    fee = _minor(rows[3]["Net Debit (NC)"], 2)
    assert fee == 25
    assert _minor(rows[4]["Net Debit (NC)"], 2) == credits - debits - fee == 9887 + 9737 - 2510 - 25
    assert rows[4]["Net Debit (NC)"] == "170.89"
    assert {row["Batch Number"] for row in rows} == {_batch(day)} == {"1521"}


def test_jpy_has_no_decimals_and_currencies_get_their_own_fee_and_payout(api: Api) -> None:
    yen = api.authorize(token="tok_visa", amount=1000, currency="JPY")
    capture = api.capture(yen["psp_reference"], 1000)
    euro = api.authorize(token="tok_mastercard", amount=10000, currency="EUR")
    api.capture(euro["psp_reference"], 10000)
    rows = api.report(_day(capture["created_at"]))
    jpy = next(row for row in rows if row["Psp Reference"] == yen["psp_reference"])
    # 1000 JPY: commission 10, markup 6, scheme 1 (1.3), interchange 18 (US card); net 965.
    assert (jpy["Gross Credit (GC)"], jpy["Commission (NC)"], jpy["Markup (NC)"]) == ("1000", "10", "6")
    assert (jpy["Scheme Fees (NC)"], jpy["Interchange (NC)"], jpy["Net Credit (NC)"]) == ("1", "18", "965")
    summary = [
        (r["Type"], r["Net Currency"], r["Net Debit (NC)"]) for r in rows if r["Type"] in ("Fee", "MerchantPayout")
    ]
    assert summary == [
        ("Fee", "EUR", "0.25"),
        ("MerchantPayout", "EUR", "98.62"),
        ("Fee", "JPY", "25"),
        ("MerchantPayout", "JPY", "940"),
    ]


def test_cancels_and_refusals_are_not_in_the_report(api: Api) -> None:
    auth = api.authorize(amount=1000)
    cancel = api.post(f"/v1/authorizations/{auth['psp_reference']}/cancels", {}).json()
    api.authorize(token="tok_declined")
    rows = api.report(_day(cancel["created_at"]))
    assert rows == []


def test_rows_show_the_authorizations_merchant_account(api: Api) -> None:
    auth = api.authorize(amount=1000, merchant_account="OtherMerchant")
    capture = api.capture(auth["psp_reference"], 1000)
    rows = api.report(_day(capture["created_at"]))
    assert rows[0]["Merchant Account"] == "OtherMerchant"
    assert rows[-1]["Merchant Account"] == "ClearhouseSandbox"


def test_only_that_utc_day_is_reported(api: Api) -> None:
    auth = api.authorize(amount=1000)
    api.capture(auth["psp_reference"], 1000)
    assert len(api.report(DAY)) == 3
    assert api.report("2024-02-28") == []
    assert api.report("2024-03-01") == []
