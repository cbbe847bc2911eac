"""Concurrency claims, proven with real threads against PostgreSQL: one key → one payment, in-flight → 409."""

from __future__ import annotations

import json
import threading
from collections import Counter

import pytest
from rest_framework.test import APIClient

from config.platform.idempotency.models import IdempotencyKey
from ledger.models import LedgerTransaction
from payments.models import Event, Payment
from tests.conftest import MerchantClient, close_connection_after, drain_outbox, payment_body

pytestmark = pytest.mark.django_db(transaction=True)


def test_twenty_concurrent_identical_requests_make_one_payment_and_one_ledger_transaction(api: MerchantClient):
    body = json.dumps(payment_body(capture_method="manual"))
    barrier = threading.Barrier(20)
    responses: list[tuple[int, bytes, str | None]] = []
    lock = threading.Lock()

    @close_connection_after
    def send() -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {api.api_key}")
        barrier.wait()
        r = client.post("/v1/payments", data=body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="same-key")
        with lock:
            responses.append((r.status_code, r.content, r.headers.get("Idempotent-Replayed")))

    threads = [threading.Thread(target=send) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    statuses = Counter(status for status, _, _ in responses)
    assert set(statuses) <= {202, 409}, statuses
    assert statuses[202] >= 1
    created = [content for status, content, replayed in responses if status == 202 and replayed is None]
    assert len(created) == 1  # exactly one request did the work; the other 202s are byte-identical replays
    assert all(content == created[0] for status, content, _ in responses if status == 202)
    for status, content, _ in responses:
        if status == 409:
            assert json.loads(content)["code"] == "idempotency_key_in_use"

    assert Payment.objects.count() == 1
    assert IdempotencyKey.objects.count() == 1
    assert Event.objects.count() == 1
    drain_outbox()
    assert LedgerTransaction.objects.count() == 1  # the single authorization hold
    assert Payment.objects.get().status == "authorized"


def test_parallel_capture_and_void_of_one_payment_only_one_wins(api: MerchantClient):
    payment_id = api.post("/v1/payments", payment_body(capture_method="manual")).json()["id"]
    drain_outbox()
    barrier = threading.Barrier(2)
    results: dict[str, int] = {}

    @close_connection_after
    def act(action: str) -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {api.api_key}")
        barrier.wait()
        r = client.post(
            f"/v1/payments/{payment_id}/{action}",
            data="{}",
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=f"{action}-1",
        )
        results[action] = r.status_code

    threads = [threading.Thread(target=act, args=(a,)) for a in ("capture", "void")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(results.values()) == [202, 409]
    drain_outbox()
    assert Payment.objects.get().status in {"captured", "voided"}
    assert LedgerTransaction.objects.filter(pending_of__isnull=False).count() == 1
