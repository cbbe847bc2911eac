"""Operating the ledger: `ledger_verify` as the real command over traffic made by the API and the worker, the
nightly verification from Celery beat and its failures as metrics, the periodic sealer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection, transaction
from django.test import Client

from ledger import services as ledger_services
from ledger import tasks as ledger_tasks
from ledger.contracts import AccountPurpose, AccountRef, Leg, Side, TransactionRecord
from ledger.models import LedgerSeal, LedgerTransaction, VerificationRun
from payments.ledger_refs import merchant_owner, platform_owner
from tests.conftest import MerchantClient, drain_outbox, payment_body, subprocess_database_url

pytestmark = pytest.mark.django_db(transaction=True)

BASE_DIR = Path(__file__).resolve().parents[2]


def test_beat_seals_the_chain_every_interval_and_verifies_the_ledger_nightly() -> None:
    schedule = django_settings.CELERY_BEAT_SCHEDULE
    assert schedule["ledger-seal"]["task"] == "ledger.tasks.seal"
    assert schedule["ledger-seal"]["schedule"] == django_settings.LEDGER_SEAL_INTERVAL
    nightly = schedule["ledger-verify"]
    assert nightly["task"] == "ledger.tasks.verify"
    assert nightly["schedule"].hour == {django_settings.LEDGER_VERIFY_HOUR}
    from config.celery import app

    app.loader.import_default_modules()
    assert {"ledger.tasks.seal", "ledger.tasks.verify"} <= set(app.tasks)


def metric(body: str, name: str) -> float | None:
    for line in body.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


def _post(key: str, debit: AccountRef, credit: AccountRef, amount: int) -> TransactionRecord:
    with transaction.atomic():
        return ledger_services.transaction_post(
            code="fee",
            reference=key,
            idempotency_key=key,
            legs=[
                Leg(account=debit, side=Side.DEBIT, amount=amount),
                Leg(account=credit, side=Side.CREDIT, amount=amount),
            ],
        )


@pytest.mark.ledger_tampered
def test_nightly_verification_failures_and_the_time_of_the_last_run_are_metrics() -> None:
    owner = "test:merchant:m1"
    available = AccountRef(owner=owner, purpose=AccountPurpose.MERCHANT_AVAILABLE, currency="EUR")
    fees = AccountRef(owner="test:platform", purpose=AccountPurpose.FEES, currency="EUR")
    txn = _post("fee-1", available, fees, 100)
    assert metric(Client().get("/metrics").content.decode(), "clearhouse_ledger_unsealed_transactions") == 1

    assert ledger_tasks.seal() == 1
    assert ledger_tasks.verify() is True
    body = Client().get("/metrics").content.decode()
    run = VerificationRun.objects.get()
    assert (run.source, run.ok, run.head_seq) == ("task", True, 1)
    assert metric(body, "clearhouse_ledger_verify_failures") == 0
    assert metric(body, "clearhouse_ledger_verify_last_run_timestamp_seconds") == pytest.approx(
        run.finished_at.timestamp()
    )
    assert metric(body, "clearhouse_ledger_verify_last_success_timestamp_seconds") == pytest.approx(
        run.finished_at.timestamp()
    )
    assert metric(body, "clearhouse_ledger_sealed_transactions") == 1
    assert metric(body, "clearhouse_ledger_unsealed_transactions") == 0
    assert 'clearhouse_ledger_verify_runs_total{result="ok"} 1.0' in body

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("UPDATE ledger_entry SET amount = 99 WHERE transaction_id = %s AND side = 'debit'", [txn.id])
    assert ledger_tasks.verify() is False
    body = Client().get("/metrics").content.decode()
    failed = VerificationRun.objects.order_by("-id").first()
    assert failed.ok is False and failed.failures >= 2  # unbalanced, stored balance, changed after sealing
    assert metric(body, "clearhouse_ledger_verify_failures") == failed.failures
    assert metric(body, "clearhouse_ledger_verify_last_run_timestamp_seconds") == pytest.approx(
        failed.finished_at.timestamp()
    )
    assert metric(body, "clearhouse_ledger_verify_last_success_timestamp_seconds") == pytest.approx(
        run.finished_at.timestamp()
    )
    assert 'clearhouse_ledger_verify_runs_total{result="failed"} 1.0' in body
    assert any(f"ledger transaction {txn.id}" in f for check in failed.report for f in check["failures"])


def ledger_verify_process(*args: str) -> subprocess.CompletedProcess[str]:
    """`manage.py ledger_verify` as its own process, on the test database (the rows of a transactional test are
    committed, so another connection sees them)."""
    env = dict(os.environ, DATABASE_URL=subprocess_database_url(), DJANGO_SETTINGS_MODULE="config.settings.test")
    return subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), "ledger_verify", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.ledger_tampered
def test_ledger_verify_is_green_after_real_payment_traffic_and_red_after_an_edit(
    api: MerchantClient, other_api: MerchantClient
) -> None:
    """Traffic through the API and the worker (authorizations, full and partial captures, voids, declines, three
    currencies, two merchants) plus settlement, fee and refund postings, then the command, as an operator runs it."""
    manual = []
    for client in (api, other_api):
        client.post("/v1/payments", payment_body(amount=2599))
        client.post("/v1/payments", payment_body(amount=1000, payment_method="tok_declined"))
        client.post("/v1/payments", payment_body(amount=1500, currency="JPY"))
        client.post("/v1/payments", payment_body(amount=12345, currency="BHD"))
        for _ in range(2):
            manual.append(
                (client, client.post("/v1/payments", payment_body(amount=5000, capture_method="manual")).json()["id"])
            )
    drain_outbox()
    for i, (client, payment_id) in enumerate(manual):
        if i % 2:
            client.post(f"/v1/payments/{payment_id}/capture", {"amount_to_capture": 3000})
        else:
            client.post(f"/v1/payments/{payment_id}/void")
    drain_outbox()
    owner = merchant_owner(merchant_id=api.merchant.pk, mode="test")
    pending = AccountRef(owner=owner, purpose=AccountPurpose.MERCHANT_PENDING, currency="EUR")
    available = AccountRef(owner=owner, purpose=AccountPurpose.MERCHANT_AVAILABLE, currency="EUR")
    platform = platform_owner(mode="test")
    _post("settlement-1", pending, available, 2599)
    _post("fee-1", available, AccountRef(owner=platform, purpose=AccountPurpose.FEES, currency="EUR"), 40)
    refund = _post(
        "refund-1", available, AccountRef(owner=platform, purpose=AccountPurpose.REFUNDS_CLEARING, currency="EUR"), 500
    )
    total = LedgerTransaction.objects.count()
    assert total == 2 * (3 + 3 + 2 + 2) + 3  # per merchant: 3 pending + 3 captures, 2 manual pending + 2 resolutions

    green = ledger_verify_process("--seal", "--format", "json")
    assert green.returncode == 0, green.stdout + green.stderr
    report = json.loads(green.stdout)
    assert report["ok"] is True and report["chain"]["sealed"] == total and report["chain"]["unsealed"] == 0
    assert {c["name"]: c["ok"] for c in report["checks"]} == dict.fromkeys(
        [
            "balanced",
            "two_or_more_entries",
            "entry_currency",
            "holds_resolve_once",
            "hold_release_exact",
            "pending_not_negative",
            "stored_balances",
            "reversals_mirror",
            "hash_chain",
            "sealed_in_time",
        ],
        True,
    )
    assert LedgerSeal.objects.count() == total

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("UPDATE ledger_entry SET amount = 5 WHERE transaction_id = %s", [refund.id])
    red = ledger_verify_process()
    assert red.returncode == 1
    assert f"ledger transaction {refund.id} was changed after it was sealed" in red.stdout
    assert "ledger verification failed" in red.stderr
