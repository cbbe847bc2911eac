"""Nightly reconciliation against the sandbox acquirer's Settlement details report: settlement of
captured payments in the ledger (not of held ones), each kind of discrepancy, re-runs that change nothing, the
exit status, JSON output, dry runs, concurrent runs, the nightly beat entry, and resolving in the admin."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.test import Client

from config.platform.actors import Actor
from ledger.contracts import AccountPurpose, AccountRef
from ledger.models import Entry, LedgerTransaction
from ledger.selectors import balance_get
from payments import settlement_holds, staff
from payments.contracts import SettlementRefund
from payments.ledger_refs import merchant_owner, platform_owner
from payments.models import AuditRecord, Payment, Refund
from payments.processors import get_processor
from payments.processors.base import ModificationRequest
from reconciliation import matching
from reconciliation.models import Discrepancy, ReconciliationRun, Settlement
from reconciliation.report import REFUNDED, parse
from reconciliation.services import reconcile
from reconciliation.tasks import reconcile_nightly
from tests.conftest import MerchantClient, close_connection_after, drain_outbox, payment_body
from tests.operators import run_command

pytestmark = pytest.mark.django_db(transaction=True)


@dataclass
class Day:
    """The payments of one day at a fresh acquirer, and that day."""

    api: MerchantClient
    day: dt.date
    visa: str  # automatic, 25.99 EUR, US card
    mastercard: str  # automatic, 100.00 EUR, GB card
    partial: str  # manual 50.00 EUR, captured 40.00
    risky: str  # tok_risky, automatic 15.00 EUR: captured and held by fraud
    voided: str  # manual 30.00 EUR, voided
    authorized: str  # manual 20.00 EUR, still authorized


def pay(api: MerchantClient, **overrides) -> str:
    response = api.post("/v1/payments", payment_body(**overrides))
    assert response.status_code == 202, response.content
    return response.json()["id"]


@pytest.fixture
def day(api: MerchantClient, own_acquirer, fraud_defaults, settings) -> Day:
    settings.RECONCILIATION_MISSING_GRACE_SECONDS = 0
    visa = pay(api, amount=2599)
    mastercard = pay(api, amount=10_000, payment_method="tok_mastercard")
    partial = pay(api, amount=5_000, capture_method="manual")
    risky = pay(api, amount=1_500, payment_method="tok_risky")
    voided = pay(api, amount=3_000, capture_method="manual")
    authorized = pay(api, amount=2_000, capture_method="manual")
    drain_outbox()
    assert api.post(f"/v1/payments/{partial}/capture", {"amount_to_capture": 4_000}).status_code == 202
    assert api.post(f"/v1/payments/{voided}/void").status_code == 202
    drain_outbox()
    statuses = dict(Payment.objects.values_list("id", "status"))
    assert [statuses[p] for p in (visa, mastercard, partial, risky, voided, authorized)] == [
        "captured",
        "captured",
        "captured",
        "captured",
        "voided",
        "authorized",
    ]
    assert settlement_holds.settlement_hold_active(payment_id=risky) is not None
    return Day(
        api=api,
        day=Payment.objects.get(pk=visa).captured_at.date(),
        visa=visa,
        mastercard=mastercard,
        partial=partial,
        risky=risky,
        voided=voided,
        authorized=authorized,
    )


def balance(owner: str, purpose: AccountPurpose, currency: str = "EUR"):
    return balance_get(ref=AccountRef(owner=owner, purpose=purpose, currency=currency))


def merchant(d: Day, purpose: AccountPurpose) -> int:
    return balance(merchant_owner(merchant_id=d.api.merchant.pk, mode="test"), purpose).posted


def platform(purpose: AccountPurpose) -> int:
    return balance(platform_owner(mode="test"), purpose).posted


def open_discrepancies() -> set[tuple[str, str]]:
    return {(d.kind, d.payment_id or d.psp_reference) for d in Discrepancy.objects.filter(status="open")}


def snapshot() -> tuple:
    return (
        ReconciliationRun.objects.count(),
        sorted(Settlement.objects.values_list("id", "ledger_transaction_id")),
        sorted(
            Discrepancy.objects.values_list("id", "kind", "key", "status", "report_amount", "our_amount", "our_status")
        ),
        LedgerTransaction.objects.count(),
        Entry.objects.count(),
        AuditRecord.objects.count(),
    )


def psp(payment_id: str) -> str:
    return Payment.objects.get(pk=payment_id).psp_reference


def report_rows(d: Day) -> list[list[str]]:
    return list(csv.reader(io.StringIO(get_processor().settlement_report(d.day).decode())))


def write_report(path: Path, rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    path.write_text(buffer.getvalue())
    return str(path)


def row_of(rows: list[list[str]], payment_id: str) -> list[str]:
    header = rows[0]
    (row,) = [r for r in rows[1:] if r[header.index("Merchant Reference")] == payment_id]
    return row


def test_reconcile_settles_captured_payments_and_leaves_the_held_one_unsettled(day: Day):
    report = parse(get_processor().settlement_report(day.day))
    settled_rows = [r for r in report if r.type == "Settled"]
    assert {r.merchant_reference for r in settled_rows} == {day.visa, day.mastercard, day.partial, day.risky}

    code, out = run_command("reconcile", "--date", day.day.isoformat())

    assert code == 1  # the held payment reported as settled is an open discrepancy
    assert set(Settlement.objects.filter(kind="capture").values_list("payment_id", flat=True)) == {
        day.visa,
        day.mastercard,
        day.partial,
    }
    assert merchant(day, AccountPurpose.MERCHANT_AVAILABLE) == 2599 + 10_000 + 4_000
    assert merchant(day, AccountPurpose.MERCHANT_PENDING) == 1_500  # the held payment's money stays pending
    fees = sum(r.fees for r in settled_rows if r.merchant_reference != day.risky)
    daily_fee = sum(r.net_debit for r in report if r.type == "Fee")
    assert fees > 0 and daily_fee == 25
    assert platform(AccountPurpose.PROCESSOR_FEES) == fees + daily_fee
    assert platform(AccountPurpose.PROCESSOR_RECEIVABLE) == 2599 + 10_000 + 4_000 + 1_500 - fees - daily_fee
    (held,) = Discrepancy.objects.all()
    assert (held.kind, held.payment_id, held.report_amount, held.our_amount) == (
        "held_or_voided_settled",
        day.risky,
        1_500,
        1_500,
    )
    assert "3 payments settled" in out and "held_or_voided_settled" in out and day.risky in out
    assert "EUR: settled gross 180.99 EUR" in out  # 25.99 + 100.00 + 40.00 + 15.00 in the report
    assert run_command("ledger_verify")[0] == 0


def test_running_reconcile_again_changes_nothing(day: Day):
    first_code, _ = run_command("reconcile", "--date", day.day.isoformat())
    before = snapshot()

    code, out = run_command("reconcile", "--date", day.day.isoformat())

    assert (code, first_code) == (1, 1)
    assert snapshot() == before
    assert "(nothing changed)" in out


def test_releasing_the_hold_lets_a_rerun_settle_it_and_closes_the_discrepancy(day: Day):
    run_command("reconcile", "--date", day.day.isoformat())
    staff.settlement_hold_release_by_staff(
        payment_id=day.risky, actor=Actor(username="fiona"), reason="Verified customer"
    )

    code, out = run_command("reconcile", "--date", day.day.isoformat())

    assert code == 0 and "Open discrepancies: 0" in out
    assert Settlement.objects.filter(kind="capture", payment_id=day.risky).exists()
    assert merchant(day, AccountPurpose.MERCHANT_PENDING) == 0
    held = Discrepancy.objects.get(kind="held_or_voided_settled")
    assert (held.status, held.resolved_by) == ("resolved", "system")
    assert AuditRecord.objects.filter(action="reconciliation.discrepancy_close", object_id=str(held.pk)).count() == 1


def test_a_hand_edited_report_gives_exactly_the_three_discrepancies(day: Day, tmp_path: Path):
    staff.settlement_hold_release_by_staff(
        payment_id=day.risky, actor=Actor(username="fiona"), reason="Verified customer"
    )
    assert run_command("reconcile", "--date", day.day.isoformat())[0] == 0
    rows = report_rows(day)
    header = rows[0]
    row_of(rows, day.visa)[header.index("Gross Credit (GC)")] = "26.99"  # one amount changed
    rows.remove(row_of(rows, day.mastercard))  # one row removed
    added = list(row_of(rows, day.partial))  # one row added
    added[header.index("Psp Reference")] = "9999000011112222"
    added[header.index("Modification Reference")] = "9999000011113333"
    added[header.index("Merchant Reference")] = "not-ours"
    rows.insert(-2, added)
    edited = write_report(tmp_path / "edited.csv", rows)
    ledger_before = (LedgerTransaction.objects.count(), Entry.objects.count())

    code, out = run_command("reconcile", "--date", day.day.isoformat(), "--report", edited, "--format", "json")

    assert code == 1
    body = json.loads(out)
    found = {(d["kind"], d["payment_id"] or d["psp_reference"]): d for d in body["open_discrepancies"]}
    assert set(found) == {
        ("amount_mismatch", day.visa),
        ("missing_from_report", day.mastercard),
        ("unknown_row", "9999000011112222"),
    }
    amount = found[("amount_mismatch", day.visa)]
    assert (amount["report_amount"], amount["our_amount"], amount["report_currency"]) == (2699, 2599, "EUR")
    missing = found[("missing_from_report", day.mastercard)]
    assert (missing["report_amount"], missing["our_amount"], missing["our_status"]) == (None, 10_000, "captured")
    unknown = found[("unknown_row", "9999000011112222")]
    assert (unknown["report_amount"], unknown["our_amount"]) == (4_000, None)
    assert body["changes"]["discrepancies_opened"] == 3 and body["changes"]["settled"] == 0
    assert (LedgerTransaction.objects.count(), Entry.objects.count()) == ledger_before  # nothing settles twice

    before = snapshot()
    again_code, again = run_command("reconcile", "--date", day.day.isoformat(), "--report", edited)
    assert again_code == 1 and snapshot() == before and "(nothing changed)" in again


def test_duplicates_currency_status_and_voided_rows_are_each_a_discrepancy(day: Day, tmp_path: Path):
    rows = report_rows(day)
    header = rows[0]
    col = header.index
    rows.insert(-2, list(row_of(rows, day.visa)))  # a duplicate row
    row_of(rows, day.mastercard)[col("Gross Currency")] = "USD"
    for payment_id, reference in ((day.voided, "8888000000000001"), (day.authorized, "8888000000000002")):
        extra = list(row_of(rows, day.partial))
        extra[col("Psp Reference")] = psp(payment_id)
        extra[col("Merchant Reference")] = payment_id
        extra[col("Modification Reference")] = reference
        rows.insert(-2, extra)

    code, _ = run_command(
        "reconcile", "--date", day.day.isoformat(), "--report", write_report(tmp_path / "r.csv", rows)
    )

    assert code == 1
    assert open_discrepancies() == {
        ("duplicate_row", day.visa),
        ("currency_mismatch", day.mastercard),
        ("held_or_voided_settled", day.voided),
        ("held_or_voided_settled", day.risky),
        ("status_mismatch", day.authorized),
    }
    currency = Discrepancy.objects.get(kind="currency_mismatch")
    assert (currency.report_currency, currency.our_currency) == ("USD", "EUR")
    assert set(Settlement.objects.filter(kind="capture").values_list("payment_id", flat=True)) == {
        day.visa,
        day.partial,
    }


def test_a_capture_just_before_midnight_is_missing_only_after_the_grace_period(
    api: MerchantClient, own_acquirer, settings, tmp_path: Path
):
    settings.RECONCILIATION_MISSING_GRACE_SECONDS = 900
    payment_id = pay(api)
    drain_outbox()
    day = dt.date(2026, 3, 1)
    Payment.objects.filter(pk=payment_id).update(captured_at=dt.datetime(2026, 3, 1, 23, 50, tzinfo=dt.UTC))
    empty = tmp_path / "empty.csv"
    empty.write_bytes(get_processor().settlement_report(day))  # only the header: nothing settled that day

    code, _ = run_command("reconcile", "--date", "2026-03-01", "--report", str(empty))

    assert code == 0  # captured 10 minutes before midnight: it may be in the next day's report
    assert not Discrepancy.objects.exists()
    code, _ = run_command("reconcile", "--date", "2026-03-02", "--report", str(empty))  # it is not there either

    assert code == 1
    assert open_discrepancies() == {("missing_from_report", payment_id)}
    assert matching.missing_window(day, grace_seconds=900) == (
        dt.datetime(2026, 2, 28, 23, 45, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 1, 23, 45, tzinfo=dt.UTC),
    )


def test_refunded_rows_match_refunds_by_psp_reference(day: Day):
    """A refund made through the API matches its `Refunded` row: it settles with its commission, and the
    merchant's pending and available balances end where the report's net says."""
    response = day.api.post("/v1/refunds", {"payment": day.visa, "amount": 500})
    assert response.status_code == 202, response.content
    refund_id = response.json()["id"]
    drain_outbox()
    refund = Refund.objects.get(pk=refund_id)
    assert refund.status == "succeeded" and refund.psp_reference
    rows = parse(get_processor().settlement_report(day.day))
    (refunded,) = [r for r in rows if r.type == REFUNDED]
    assert refunded.modification_reference == refund.psp_reference

    code, _ = run_command("reconcile", "--date", day.day.isoformat())

    assert not Discrepancy.objects.filter(kind="unknown_row").exists()
    settlement = Settlement.objects.get(kind="refund", refund_id=refund_id)
    assert (settlement.gross_amount, settlement.fees) == (500, refunded.fees)
    txn = LedgerTransaction.objects.get(pk=settlement.ledger_transaction_id)
    assert (txn.code, txn.idempotency_key) == ("refund_settlement", f"{refund_id}:refund_settlement")
    # visa 2599 − 500 refunded, mastercard 10000 and partial 4000 settled; the held risky payment is not.
    assert merchant(day, AccountPurpose.MERCHANT_AVAILABLE) == 2599 - 500 + 10_000 + 4_000
    assert merchant(day, AccountPurpose.MERCHANT_PENDING) == 1_500  # only the held payment is unsettled
    assert code == 1  # the held payment reported as settled is still an open discrepancy
    assert open_discrepancies() == {("held_or_voided_settled", day.risky)}

    before = snapshot()
    run_command("reconcile", "--date", day.day.isoformat())
    assert snapshot() == before  # the refund is not settled twice


def test_a_refunds_row_is_matched_against_the_stored_refund(day: Day):
    """The matching rules for refunds: amount and status must agree with the stored refund."""
    refund = get_processor().refund(
        ModificationRequest(psp_reference=psp(day.visa), amount=500, currency="EUR", idempotency_key="refund-1")
    )
    rows = parse(get_processor().settlement_report(day.day))
    (refunded,) = [r for r in rows if r.type == REFUNDED]

    ours = SettlementRefund(
        refund_id="re_1",
        payment_id=day.visa,
        merchant_id=day.api.merchant.pk,
        mode="test",
        status="succeeded",
        amount=500,
        currency="EUR",
        psp_reference=refund.psp_reference,
        payment_psp_reference=psp(day.visa),
        succeeded=True,
    )

    def decide(refund_view: SettlementRefund) -> object:
        outcome = matching.match_rows(
            [refunded], day=day.day, payments={}, refunds={refund.psp_reference: refund_view}, settled_on={}
        )
        return (outcome.settle + outcome.found)[0]

    assert isinstance(decide(ours), matching.Settle)
    assert decide(SettlementRefund(**{**ours.__dict__, "amount": 400})).kind == "amount_mismatch"
    assert decide(SettlementRefund(**{**ours.__dict__, "status": "failed", "succeeded": False})).kind == (
        "status_mismatch"
    )

    # A refund made behind our back (straight at the processor) is not ours.
    code, _ = run_command("reconcile", "--date", day.day.isoformat())
    unknown = Discrepancy.objects.get(kind="unknown_row")
    assert (unknown.row_type, unknown.modification_reference, unknown.report_amount) == (
        "Refunded",
        refund.psp_reference,
        500,
    )
    assert code == 1


def test_dry_run_reports_what_would_change_and_writes_nothing(day: Day):
    before = snapshot()

    code, out = run_command("reconcile", "--date", day.day.isoformat(), "--dry-run", "--format", "json")

    body = json.loads(out)
    assert code == 1 and body["dry_run"] is True and body["run_id"] is None
    assert body["changes"]["settled"] == 3 and len(body["open_discrepancies"]) == 1
    assert body["totals"]["EUR"]["settled_gross"] == 18_099 and body["rows"]["Settled"] == 4
    assert snapshot() == before


def test_a_malformed_report_is_refused_and_nothing_is_written(day: Day, tmp_path: Path):
    rows = report_rows(day)
    row_of(rows, day.visa)[rows[0].index("Gross Credit (GC)")] = "25.999"
    before = snapshot()

    with pytest.raises(CommandError) as error:
        run_command("reconcile", "--date", day.day.isoformat(), "--report", write_report(tmp_path / "bad.csv", rows))

    assert error.value.returncode == 2 and "more than 2 decimal places" in str(error.value)
    assert snapshot() == before


def test_two_runs_at_once_settle_each_payment_once(day: Day):
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    @close_connection_after
    def run() -> None:
        barrier.wait()
        try:
            reconcile(day=day.day)
        except BaseException as exc:  # any failure of either run fails the test below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert Settlement.objects.filter(kind="capture").count() == 3
    assert LedgerTransaction.objects.filter(code="settlement").count() == 3
    assert Discrepancy.objects.count() == 1 and ReconciliationRun.objects.count() == 1


def wait_until_a_backend_waits_for_a_lock(timeout: float = 60) -> None:
    """Poll PostgreSQL (no notification exists for this) until some session waits on a lock."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.01)
    pytest.fail("no session ever waited for a lock")


def test_a_hold_placed_while_reconciliation_runs_is_never_settled_over(day: Day):
    staff.settlement_hold_release_by_staff(payment_id=day.risky, actor=Actor(username="fiona"), reason="ok")
    placed, release = threading.Event(), threading.Event()

    @close_connection_after
    def place_hold_and_wait() -> None:
        with transaction.atomic():
            settlement_holds.settlement_hold_place(payment_id=day.visa, reason="manual_review", source="test")
            placed.set()
            release.wait(timeout=60)

    results: list[object] = []

    @close_connection_after
    def run() -> None:
        results.append(reconcile(day=day.day))

    holder = threading.Thread(target=place_hold_and_wait)
    holder.start()
    assert placed.wait(timeout=60)
    runner = threading.Thread(target=run)
    runner.start()
    wait_until_a_backend_waits_for_a_lock()
    release.set()
    holder.join()
    runner.join()

    assert not Settlement.objects.filter(payment_id=day.visa).exists()
    assert open_discrepancies() == {("held_or_voided_settled", day.visa)}


def test_the_nightly_beat_entry_reconciles_yesterday(api: MerchantClient, own_acquirer):
    entry = django_settings.CELERY_BEAT_SCHEDULE["reconcile-nightly"]
    assert entry["task"] == "reconciliation.tasks.reconcile_nightly"
    assert entry["schedule"].hour == {3} and entry["schedule"].minute == {0}

    assert reconcile_nightly() == 0

    (run,) = ReconciliationRun.objects.all()
    assert run.report_date == dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    assert run.source == "processor"


def test_a_discrepancy_is_resolved_in_the_admin_with_an_audited_note(day: Day, finance: Client, support: Client):
    run_command("reconcile", "--date", day.day.isoformat())
    discrepancy = Discrepancy.objects.get()
    url = f"/admin/reconciliation/discrepancy/{discrepancy.pk}/resolve/"
    page = finance.get(f"/admin/reconciliation/discrepancy/{discrepancy.pk}/change/").content.decode()
    assert (
        url in page and "held_or_voided_settled" in finance.get("/admin/reconciliation/discrepancy/").content.decode()
    )

    assert support.post(url, {"reason": "not mine to resolve"}).status_code == 403
    assert finance.post(url, {"reason": ""}).status_code == 400
    response = finance.post(url, {"reason": "Risk team keeps the funds until the chargeback window ends"})

    assert response.status_code == 302
    discrepancy.refresh_from_db()
    assert (discrepancy.status, discrepancy.resolved_by) == ("resolved", "fiona")
    audit = AuditRecord.objects.get(action="reconciliation.discrepancy_resolve")
    assert (audit.actor, audit.object_id, audit.payment_id) == ("fiona", str(discrepancy.pk), day.risky)
    assert finance.post(url, {"reason": "again"}).status_code == 400  # already resolved
    assert finance.get(f"/admin/reconciliation/discrepancy/{discrepancy.pk}/delete/").status_code == 403

    code, _ = run_command("reconcile", "--date", day.day.isoformat())  # still held, still in the report
    discrepancy.refresh_from_db()
    assert code == 0 and discrepancy.status == "resolved"  # a person's resolution stands
    assert "Settlement" in finance.get(f"/admin/payments/payment/{day.visa}/change/").content.decode()
