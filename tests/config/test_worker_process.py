"""With real processes: a Celery worker (with its beat sweep) killed with SIGKILL in the middle of an event
loses nothing; a new worker finishes the payment exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings

from config.platform.outbox.models import OutboxMessage
from ledger.models import LedgerTransaction
from payments.models import Payment
from tests.conftest import (
    ACQUIRER_KEY,
    Acquirer,
    MerchantClient,
    payment_body,
    start_acquirer,
    subprocess_database_url,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

BASE_DIR = Path(__file__).resolve().parents[2]


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def slow_acquirer(tmp_path: Path) -> Iterator[Acquirer]:
    running = start_acquirer(tmp_path / "slow.sqlite3", slow_seconds=4.0)
    yield running
    running.server.shutdown()
    running.server.server_close()


def start_worker(tmp_path: Path, acquirer: Acquirer, name: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": subprocess_database_url(),
        "SANDBOX_ACQUIRER_URL": acquirer.url,
        "SANDBOX_ACQUIRER_API_KEY": ACQUIRER_KEY,
        "PROCESSOR_READ_TIMEOUT": "30",
        "OUTBOX_LEASE_SECONDS": "3",
        "OUTBOX_SWEEP_INTERVAL": "0.5",
        "OUTBOX_BACKOFF_BASE": "1",
        "OUTBOX_BACKOFF_CAP": "2",
        "LOG_FORMAT": "json",
    }
    argv = [
        str(Path(sys.executable).parent / "celery"),
        "-A",
        "config",
        "worker",
        "-B",
        "--pool",
        "solo",
        "--hostname",
        f"{name}@%h",
        "--schedule",
        str(tmp_path / f"{name}-beat"),
        "--loglevel",
        "WARNING",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    log = open(tmp_path / f"{name}.log", "wb")
    return subprocess.Popen(argv, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def test_a_worker_killed_mid_event_loses_nothing(api: MerchantClient, slow_acquirer: Acquirer, tmp_path: Path):
    redis.Redis.from_url(django_settings.REDIS_URL).flushdb()  # no stale tasks from other tests
    payment_id = api.post("/v1/payments", payment_body(payment_method="tok_timeout")).json()["id"]
    row = OutboxMessage.objects.get(key=payment_id, subscriber="payments.processor")

    first = start_worker(tmp_path, slow_acquirer, "first")
    try:
        # The beat sweep finds the row; the worker claims it and blocks in the (slow) authorization call.
        wait_for(lambda: OutboxMessage.objects.get(pk=row.pk).attempts == 1, 60, "the worker to claim the row")
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)

    row.refresh_from_db()
    assert row.status == "pending" and row.locked_until is not None  # still owed, leased to the dead worker
    assert Payment.objects.get(pk=payment_id).status == "processing"

    second = start_worker(tmp_path, slow_acquirer, "second")
    try:
        wait_for(lambda: Payment.objects.get(pk=payment_id).status == "captured", 90, "the payment to be captured")
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        second.wait(20)

    row.refresh_from_db()
    assert row.status == "done" and row.attempts >= 2
    assert len(slow_acquirer.authorizations_for(payment_id)) == 1  # the card was authorized once
    codes = list(LedgerTransaction.objects.filter(reference=f"payment:{payment_id}").values_list("code", flat=True))
    assert sorted(codes) == ["authorization_hold", "capture"]
