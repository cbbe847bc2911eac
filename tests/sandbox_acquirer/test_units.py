"""Pure functions and storage of the sandbox acquirer (no HTTP)."""

from __future__ import annotations

import ast
import csv
import io
import pathlib
from datetime import UTC, date, datetime, timedelta

import pytest

from sandbox_acquirer import cards, money, report
from sandbox_acquirer.store import Store, datetime_to_micros

PACKAGE = pathlib.Path(money.__file__).parent


@pytest.mark.parametrize(
    ("amount", "exponent", "expected"),
    [
        (1000, 2, "10.00"),
        (9887, 2, "98.87"),
        (5, 2, "0.05"),
        (-135, 2, "-1.35"),
        (1000, 0, "1000"),
        (5, 3, "0.005"),
        (0, 2, "0.00"),
        (10**15 + 1, 2, "10000000000000.01"),
    ],
)
def test_format_minor_units(amount: int, exponent: int, expected: str) -> None:
    assert money.format_minor_units(amount, exponent) == expected


def test_currency_exponent() -> None:
    assert (money.currency_exponent("EUR"), money.currency_exponent("JPY"), money.currency_exponent("BHD")) == (2, 0, 3)
    for bad in ("eur", "XAU", "XXX", "ABC", "EURO", None, 978):
        assert money.currency_exponent(bad) is None


@pytest.mark.parametrize(
    ("amount", "bps", "expected"),
    [(10000, 60, 60), (5000, 13, 7), (1000, 13, 1), (250, 60, 2), (1, 180, 0), (27, 180, 0), (28, 180, 1), (0, 60, 0)],
)
def test_basis_points_half_up(amount: int, bps: int, expected: int) -> None:
    assert money.basis_points_half_up(amount, bps) == expected


def test_luhn() -> None:
    assert cards.luhn_valid("4242424242424242")
    assert cards.luhn_valid("79927398713")
    assert not cards.luhn_valid("4242424242424241")
    assert not cards.luhn_valid("")
    assert not cards.luhn_valid("4242 4242")
    assert not cards.luhn_valid("４２")


def test_fingerprint_is_stable_hmac_prefix() -> None:
    first = cards.fingerprint("4242424242424242")
    assert first == cards.fingerprint("4242424242424242")
    assert len(first) == 32 and int(first, 16) >= 0
    assert first != cards.fingerprint("5555555555554444")
    details = cards.card_details(cards.CARDS_BY_TOKEN["tok_visa"], 1, 2030)
    assert details["fingerprint"] == first
    assert "4242424242424242" not in repr(details)


def test_settled_fees_and_batch_number() -> None:
    fees = report.settled_fees(10000, "GB")
    assert (fees.commission, fees.markup, fees.scheme_fees, fees.interchange, fees.total) == (10, 60, 13, 30, 113)
    assert report.settled_fees(10000, "NG").interchange == 180
    assert report.settled_fees(10000, "DE").interchange == 30
    assert report.settled_fees(10000, "CH").interchange == 180
    assert report.batch_number(date(2020, 1, 1)) == 1
    assert report.batch_number(date(2021, 1, 1)) == 367
    with pytest.raises(ValueError):
        report.batch_number(date(2019, 12, 31))


def test_build_report_negative_payout() -> None:
    created = datetime_to_micros(datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC))
    entries = [
        {
            "kind": "refund",
            "modification_reference": "2" * 16,
            "amount": 1000,
            "currency": "USD",
            "created_us": created,
            "psp_reference": "1" * 16,
            "reference": "ref, with comma",
            "merchant_account": "M",
            "brand": "visa",
            "country": "US",
        },
    ]
    body = report.build_settlement_report(date(2024, 5, 6), entries, "Co", "M")
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert rows[0]["Merchant Reference"] == "ref, with comma"
    assert rows[0]["Creation Date"] == "2024-05-06 07:08:09"
    assert [(r["Type"], r["Net Debit (NC)"]) for r in rows] == [
        ("Refunded", "10.10"),
        ("Fee", "0.25"),
        ("MerchantPayout", "-10.35"),
    ]
    assert rows[2]["Modification Reference"] == f"payout-{report.batch_number(date(2024, 5, 6))}-USD"


def test_settlement_entries_respect_utc_day_bounds(tmp_path: pathlib.Path) -> None:
    store = Store(tmp_path / "nested" / "db.sqlite3")
    day = datetime(2024, 2, 29, tzinfo=UTC)
    start, end = datetime_to_micros(day), datetime_to_micros(day + timedelta(days=1))
    with store.session() as session, session.write():
        session.insert_authorization(
            {
                "psp_reference": "1" * 16,
                "reference": "r",
                "merchant_account": "M",
                "amount": 100,
                "currency": "EUR",
                "token": "tok_visa",
                "brand": "visa",
                "bin": "424242",
                "last4": "4242",
                "country": "US",
                "exp_month": 1,
                "exp_year": 2030,
                "fingerprint": "f",
                "result": "authorised",
                "refusal_reason": None,
                "state": "captured",
                "created_at": "x",
                "created_us": start - 10,
            }
        )
        for n, (kind, micros) in enumerate(
            [("capture", start - 1), ("refund", start), ("cancel", start + 1), ("refund", end - 1), ("refund", end)]
        ):
            amount = None if kind == "cancel" else 10
            session.insert_modification(str(n) * 16, "1" * 16, kind, amount, "EUR", "x", micros)
    with store.session() as session:
        entries = session.settlement_entries(start, end)
    assert [(e["kind"], e["created_us"]) for e in entries] == [("refund", start), ("refund", end - 1)]


def test_store_uses_wal(tmp_path: pathlib.Path) -> None:
    store = Store(tmp_path / "db.sqlite3")
    with store.session() as session:
        assert session.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert session.conn.execute("PRAGMA busy_timeout").fetchone()[0] > 0


def test_package_imports_no_django_or_clearhouse() -> None:
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            for name in names:
                top = name.split(".")[0]
                assert top not in {"django", "rest_framework", "payments", "config", "ledger"}, (path.name, name)


def test_no_float_in_money_code() -> None:
    for name in ("money.py", "report.py"):
        tree = ast.parse((PACKAGE / name).read_text())
        for node in ast.walk(tree):
            assert not (isinstance(node, ast.Constant) and isinstance(node.value, float)), name
            assert not (isinstance(node, ast.Name) and node.id == "float"), name
            assert not isinstance(node, ast.Div), name  # true division would produce floats


def test_app_module_import_has_no_side_effects(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    monkeypatch.chdir(tmp_path)
    module = importlib.import_module("sandbox_acquirer.app")
    importlib.reload(module)
    assert not (tmp_path / ".data").exists()
    monkeypatch.setenv("SANDBOX_ACQUIRER_SLOW_SECONDS", "0.25")
    monkeypatch.setenv("SANDBOX_ACQUIRER_API_KEY", "from-env")
    app = module.create_app()
    assert (app.slow_seconds, app.api_key) == (0.25, "from-env")
    assert (tmp_path / ".data" / "sandbox_acquirer.sqlite3").exists()
    with pytest.raises(ValueError):
        module.create_app(slow_seconds=-1)
