"""Crash recovery of idempotent requests, proven by killing a real API process (SIGKILL) at each recovery point:
a retry with the same key completes the work exactly once, and no key stays stuck longer than its lease."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import connection

from config.platform.idempotency.models import IdempotencyKey
from config.platform.outbox.models import OutboxMessage
from payments.models import Event, Payment
from tests.conftest import (
    Acquirer,
    MerchantClient,
    drain_outbox,
    flush_redis,
    payment_body,
    wait_until,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

BASE_DIR = Path(__file__).resolve().parents[3]
LEASE_SECONDS = "1.5"  # the dead process's lease on its key: a retry is 409 until it passes


def child_env(api: MerchantClient, *, crash_at: str, key: str, path: str, body: dict, prefer: str) -> dict[str, str]:
    parts = urlsplit(os.environ["DATABASE_URL"])
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"])),
        "IDEMPOTENCY_LOCK_TTL": LEASE_SECONDS,
        "CRASH_AT": crash_at,
        "API_KEY": api.api_key,
        "IDEMPOTENCY_KEY": key,
        "REQUEST_PATH": path,
        "REQUEST_BODY": json.dumps(body),
        "PREFER": prefer,
    }


def kill_at(
    api: MerchantClient, *, point: str, key: str, path: str = "/v1/payments", body: dict, prefer: str = ""
) -> None:
    """Start a real API process, let its request reach `point`, then SIGKILL it. `prefer`: its Prefer header."""
    proc = subprocess.Popen(
        [sys.executable, str(BASE_DIR / "tests" / "config" / "platform" / "crash_child.py")],
        cwd=BASE_DIR,
        env=child_env(api, crash_at=point, key=key, path=path, body=body, prefer=prefer),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.strip() == f"REACHED {point}", f"the child did not stop at {point}: {line!r}"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL


def retry_until_not_in_flight(api: MerchantClient, path: str, body: dict, key: str):
    """Retry as a client would: 409 while the dead request's lease runs, then the real answer."""
    answers = []

    def attempt() -> bool:
        answers.append(api.post(path, body, key=key))
        return answers[-1].status_code != 409

    wait_until(attempt, timeout=30, what="the dead request's lease to expire")
    for early in answers[:-1]:
        assert early.json()["code"] == "idempotency_key_in_use"
    return answers[-1]


def assert_one_payment_done_once(api: MerchantClient, response, key: str, acquirer: Acquirer) -> None:
    assert response.status_code == 202, response.content
    payment = Payment.objects.get()
    assert response.json()["id"] == payment.id
    assert Event.objects.filter(type="payment.created").count() == 1
    assert OutboxMessage.objects.filter(key=payment.id, topic="payment.created").count() == 2  # worker + webhooks
    record = IdempotencyKey.objects.get(key=key)
    assert (record.recovery_point, record.object_id, record.locked_until) == ("finished", payment.id, None)
    replay = api.post("/v1/payments", payment_body(), key=key)
    assert replay.content == response.content and replay["Idempotent-Replayed"] == "true"
    drain_outbox()
    assert Payment.objects.get().status == "captured"
    assert len(acquirer.authorizations_for(payment.id)) == 1


@pytest.mark.parametrize(
    ("point", "prefer", "stored"),
    [
        # A new key without Prefer: wait runs key row, work and response in one transaction: a kill anywhere
        # before its commit leaves nothing at all, and the retry runs the work as if for the first time.
        ("started", "", None),
        ("performing", "", None),
        # With Prefer: wait the steps commit one by one (the wait must not hold a transaction open).
        ("started", "wait=1", "started"),  # the key row is stored, nothing else
        ("performing", "wait=1", "started"),  # inside the work's transaction: the kill rolls it back
        ("object_created", "wait=1", "object_created"),  # the payment and its outbox rows committed, no response
    ],
)
def test_a_request_killed_at_a_recovery_point_completes_once_when_retried(
    api: MerchantClient, acquirer: Acquirer, point: str, prefer: str, stored: str | None
):
    key = f"crash-{point}-{prefer}"
    kill_at(api, point=point, key=key, body=payment_body(), prefer=prefer)

    record = IdempotencyKey.objects.filter(key=key).first()
    assert (record.recovery_point if record else None) == stored
    assert Payment.objects.count() == (1 if stored == "object_created" else 0)

    response = retry_until_not_in_flight(api, "/v1/payments", payment_body(), key)

    assert_one_payment_done_once(api, response, key, acquirer)


def test_a_killed_request_retried_after_redis_was_flushed_still_completes_once(api: MerchantClient, acquirer: Acquirer):
    key = "crash-and-flush"
    kill_at(api, point="object_created", key=key, body=payment_body(), prefer="wait=1")
    flush_redis()  # the dead request's Redis lock is gone: only the database lease and constraint remain

    response = retry_until_not_in_flight(api, "/v1/payments", payment_body(), key)

    assert_one_payment_done_once(api, response, key, acquirer)
