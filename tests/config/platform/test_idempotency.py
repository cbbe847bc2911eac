"""Idempotency keys, exactly (draft-ietf-httpapi-idempotency-key-header-07 status codes, Stripe replays): replays,
fingerprints, in-flight 409s, scoping, the Redis fast path and lock that are never the guarantee, and the reaper."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from config.platform.idempotency import execution as idempotency
from config.platform.idempotency import storage
from config.platform.idempotency import tasks as idempotency_tasks
from config.platform.idempotency.models import IdempotencyKey
from config.platform.outbox.models import OutboxMessage
from payments import services
from payments.models import Event, Payment
from tests.conftest import (
    MerchantClient,
    client_for,
    close_connection_after,
    flush_redis,
    live_client,
    payment_body,
    post_json,
)

pytestmark = pytest.mark.django_db(transaction=True)


class Gate:
    """Holds the first request that reaches `point` until `release()`; other requests pass."""

    def __init__(self, point: str) -> None:
        self.point = point
        self.reached = threading.Event()
        self.released = threading.Event()
        self._taken = threading.Lock()
        self._first: int | None = None

    def __call__(self, point: str) -> None:
        if point != self.point:
            return
        with self._taken:
            if self._first is None:
                self._first = threading.get_ident()
        if self._first == threading.get_ident():
            self.reached.set()
            assert self.released.wait(30)

    def release(self) -> None:
        self.released.set()


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    g = Gate("performing")  # inside the work's transaction, on either road (one transaction, or step by step)
    monkeypatch.setattr(idempotency, "checkpoint", g)
    yield g
    g.release()


def run_in_thread(fn) -> tuple[threading.Thread, dict]:
    result: dict = {}

    @close_connection_after
    def target() -> None:
        result["response"] = fn()

    t = threading.Thread(target=target)
    t.start()
    return t, result


def test_the_fingerprint_is_method_path_and_canonical_json():
    a = idempotency.request_fingerprint(method="POST", path="/v1/payments", body={"a": 1, "b": [1, 2]})
    b = idempotency.request_fingerprint(method="post", path="/v1/payments", body={"b": [1, 2], "a": 1})
    assert a == b and len(a) == 64
    assert a != idempotency.request_fingerprint(method="POST", path="/v1/refunds", body={"a": 1, "b": [1, 2]})
    assert a != idempotency.request_fingerprint(method="POST", path="/v1/payments", body={"a": 1, "b": [2, 1]})


def test_whitespace_and_key_order_do_not_change_the_fingerprint(api: MerchantClient):
    first = api.client.post(
        "/v1/payments",
        data=json.dumps(payment_body(), sort_keys=True),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="canon",
    )
    again = api.client.post(
        "/v1/payments",
        data=json.dumps(payment_body(), indent=4),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="canon",
    )
    assert again.content == first.content and again["Idempotent-Replayed"] == "true"
    assert Payment.objects.count() == 1


def test_the_same_key_on_another_path_is_422(api: MerchantClient):
    api.post("/v1/payments", payment_body(), key="one-key")
    response = api.post(
        "/v1/webhook_endpoints", {"url": "https://example.com/h", "enabled_events": ["*"]}, key="one-key"
    )
    assert response.status_code == 422 and response.json()["code"] == "idempotency_key_reused"


def test_a_request_in_flight_gets_409_with_retry_after_then_the_replay(api: MerchantClient, gate: Gate):
    thread, first = run_in_thread(
        lambda: post_json(client_for(api.api_key), "/v1/payments", payment_body(), key="busy")
    )
    assert gate.reached.wait(30)

    duplicate = api.post("/v1/payments", payment_body(), key="busy")
    assert duplicate.status_code == 409 and duplicate.json()["code"] == "idempotency_key_in_use"
    assert duplicate["Retry-After"] == "1"

    gate.release()
    thread.join(30)
    assert first["response"].status_code == 202
    replay = api.post("/v1/payments", payment_body(), key="busy")
    assert replay.content == first["response"].content and replay["Idempotent-Replayed"] == "true"
    assert Payment.objects.count() == 1


def test_without_redis_the_database_lease_still_answers_409(api: MerchantClient, gate: Gate, redis_down: None):
    thread, first = run_in_thread(lambda: post_json(client_for(api.api_key), "/v1/payments", payment_body(), key="k"))
    assert gate.reached.wait(30)

    duplicate = api.post("/v1/payments", payment_body(), key="k")
    assert duplicate.status_code == 409 and duplicate.json()["code"] == "idempotency_key_in_use"

    gate.release()
    thread.join(30)
    assert first["response"].status_code == 202
    replay = api.post("/v1/payments", payment_body(), key="k")
    assert replay.content == first["response"].content and replay["Idempotent-Replayed"] == "true"
    assert Payment.objects.count() == 1


def test_a_duplicate_never_waits_on_the_key_row_its_owner_has_locked(
    api: MerchantClient, monkeypatch: pytest.MonkeyPatch, redis_down: None
):
    """While the first request commits its work it holds the key row; the duplicate answers 409 at once (NOWAIT)."""
    gate = Gate("performing")  # inside the work's transaction, key row locked
    monkeypatch.setattr(idempotency, "checkpoint", gate)
    thread, first = run_in_thread(lambda: post_json(client_for(api.api_key), "/v1/payments", payment_body(), key="w"))
    try:
        assert gate.reached.wait(30)
        duplicate = api.post("/v1/payments", payment_body(), key="w")
        assert duplicate.status_code == 409 and duplicate.json()["code"] == "idempotency_key_in_use"
    finally:
        gate.release()
        thread.join(30)
    assert first["response"].status_code == 202 and Payment.objects.count() == 1


def test_redis_flushed_between_a_request_and_its_retry_still_makes_no_duplicate(api: MerchantClient):
    first = api.post("/v1/payments", payment_body(), key="flushed")
    flush_redis()
    retry = api.post("/v1/payments", payment_body(), key="flushed")

    assert retry.status_code == 202 and retry.content == first.content and retry["Idempotent-Replayed"] == "true"
    assert Payment.objects.count() == 1 and Event.objects.count() == 1


def test_redis_down_still_makes_no_duplicate(api: MerchantClient, redis_down: None):
    first = api.post("/v1/payments", payment_body(), key="no-redis")
    retry = api.post("/v1/payments", payment_body(), key="no-redis")
    assert first.status_code == 202 and retry.content == first.content and retry["Idempotent-Replayed"] == "true"
    assert Payment.objects.count() == 1


def test_concurrent_duplicates_without_redis_are_decided_by_the_database(api: MerchantClient, redis_down: None):
    body = payment_body()
    barrier = threading.Barrier(8)
    results: list = []
    lock = threading.Lock()

    @close_connection_after
    def send() -> None:
        client = client_for(api.api_key)
        barrier.wait()
        r = post_json(client, "/v1/payments", body, key="race-without-redis")
        with lock:
            results.append(r)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert Payment.objects.count() == 1 and IdempotencyKey.objects.count() == 1
    created = [r for r in results if r.status_code == 202 and not r.has_header("Idempotent-Replayed")]
    assert len(created) == 1
    for r in results:
        assert r.status_code in (202, 409)
        if r.status_code == 202:
            assert r.content == created[0].content
        else:
            assert r.json()["code"] == "idempotency_key_in_use"


def test_replays_come_from_redis_without_reading_the_key_table(api: MerchantClient):
    first = api.post("/v1/payments", payment_body(), key="fast")
    with CaptureQueriesContext(connection) as cached:
        replay = api.post("/v1/payments", payment_body(), key="fast")
    assert replay.content == first.content
    assert not [q for q in cached.captured_queries if "payments_idempotencykey" in q["sql"]]

    flush_redis()
    with CaptureQueriesContext(connection) as uncached:
        api.post("/v1/payments", payment_body(), key="fast")
    assert [q for q in uncached.captured_queries if "payments_idempotencykey" in q["sql"]]
    with CaptureQueriesContext(connection) as refilled:  # the database answer refilled the fast path
        api.post("/v1/payments", payment_body(), key="fast")
    assert not [q for q in refilled.captured_queries if "payments_idempotencykey" in q["sql"]]


def test_keys_are_scoped_to_the_mode(api: MerchantClient):
    live, _ = live_client(api.merchant)
    test_response = api.post("/v1/payments", payment_body(), key="same-in-both-modes")
    live_response = post_json(live, "/v1/payments", payment_body(), key="same-in-both-modes")
    assert test_response.status_code == live_response.status_code == 202
    assert test_response.json()["id"] != live_response.json()["id"]
    assert live_response.json()["livemode"] is True and not live_response.has_header("Idempotent-Replayed")


#: The two roads: one transaction (a new key, no `Prefer: wait`), or step by step (the key row is stored first).
ROADS = pytest.mark.parametrize("prefer", [{}, {"HTTP_PREFER": "wait=1"}], ids=["one-step", "step-by-step"])


@ROADS
def test_an_error_once_the_request_started_is_stored_and_replayed(
    api: MerchantClient, other_api: MerchantClient, prefer: dict
):
    payment_id = other_api.post("/v1/payments", payment_body()).json()["id"]
    first = api.post(f"/v1/payments/{payment_id}/capture", key="not-mine", **prefer)
    assert first.status_code == 404 and first["Content-Type"] == "application/problem+json"
    again = api.post(f"/v1/payments/{payment_id}/capture", key="not-mine", **prefer)
    assert again.content == first.content and again["Idempotent-Replayed"] == "true"
    record = IdempotencyKey.objects.get(key="not-mine")
    assert (record.recovery_point, record.response_status, record.locked_until) == ("finished", 404, None)
    assert bytes(record.response_body) == first.content
    flush_redis()  # the database answers the same bytes
    assert api.post(f"/v1/payments/{payment_id}/capture", key="not-mine", **prefer).content == first.content


def test_invalid_input_found_by_the_service_stores_nothing(api: MerchantClient, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = False
    refused = api.post("/v1/webhook_endpoints", {"url": "https://10.0.0.1/h", "enabled_events": ["*"]}, key="wh")
    assert refused.status_code == 400 and refused.json()["errors"][0]["field"] == "url"
    assert not IdempotencyKey.objects.filter(key="wh").exists()
    fixed = api.post("/v1/webhook_endpoints", {"url": "https://example.com/h", "enabled_events": ["*"]}, key="wh")
    assert fixed.status_code == 201


@ROADS
def test_invalid_input_found_by_the_service_frees_the_key_on_either_road(
    api: MerchantClient, monkeypatch: pytest.MonkeyPatch, prefer: dict
):
    """A ValidationProblem or DRF ValidationError raised by the work stores nothing, also when the key row was
    stored before the work ran (`Prefer: wait`): the same key may be used again with a fixed request."""
    from rest_framework.exceptions import ValidationError

    from config.platform.http.problems import ValidationProblem

    real = services.payment_create
    refusals = [
        ValidationProblem([{"field": "amount", "code": "invalid", "detail": "No."}]),
        ValidationError({"amount": ["No."]}),
    ]

    def refusing(**kwargs):
        if refusals:
            raise refusals.pop(0)
        return real(**kwargs)

    monkeypatch.setattr(services, "payment_create", refusing)
    for _ in range(2):
        refused = api.post("/v1/payments", payment_body(), key="refused", **prefer)
        assert refused.status_code == 400 and refused.json()["errors"][0]["field"] == "amount"
        assert not IdempotencyKey.objects.filter(key="refused").exists()
    accepted = api.post("/v1/payments", payment_body(), key="refused")
    assert accepted.status_code == 202 and not accepted.has_header("Idempotent-Replayed")
    assert Payment.objects.count() == 1


def test_an_unexpected_error_stores_nothing_and_frees_the_key(api: MerchantClient, monkeypatch: pytest.MonkeyPatch):
    real = services.payment_create
    calls = Counter()

    def flaky(**kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("database hiccup")
        return real(**kwargs)

    monkeypatch.setattr(services, "payment_create", flaky)
    client = client_for(api.api_key, raise_request_exception=False)
    failed = post_json(client, "/v1/payments", payment_body(), key="boom")
    assert failed.status_code == 500 and failed["Content-Type"] == "application/problem+json"
    assert failed.json()["code"] == "internal_error"
    assert Payment.objects.count() == 0 and OutboxMessage.objects.count() == 0
    assert not IdempotencyKey.objects.filter(key="boom").exists()  # rolled back with the work: the key is free

    retry = post_json(client, "/v1/payments", payment_body(), key="boom")
    assert retry.status_code == 202 and not retry.has_header("Idempotent-Replayed")
    assert Payment.objects.count() == 1


def test_old_keys_are_reaped_and_may_then_be_used_again(api: MerchantClient, settings):
    settings.IDEMPOTENCY_KEY_TTL = 3600
    api.post("/v1/payments", payment_body(), key="old")
    api.post("/v1/payments", payment_body(), key="new")
    IdempotencyKey.objects.filter(key="old").update(created_at=timezone.now() - timedelta(seconds=3601))

    assert storage.idempotency_keys_reap() == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]
    assert idempotency_tasks.idempotency_keys_reap() == 0

    flush_redis()  # the fast path forgets on its own TTL; the database no longer knows the key
    reused = api.post("/v1/payments", payment_body(amount=1), key="old")
    assert reused.status_code == 202 and not reused.has_header("Idempotent-Replayed")
    assert Payment.objects.count() == 3


def test_the_reaper_keeps_a_key_whose_request_is_still_running(api: MerchantClient):
    api.post("/v1/payments", payment_body(), key="running")
    IdempotencyKey.objects.filter(key="running").update(
        created_at=timezone.now() - timedelta(days=2), locked_until=timezone.now() + timedelta(seconds=30)
    )
    assert storage.idempotency_keys_reap() == 0


def test_a_new_key_without_prefer_wait_stores_key_work_and_answer_in_one_step(api: MerchantClient):
    """The one-transaction road: the key row is written once, already `finished` with the exact bytes sent."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    api.get("/v1/payments")  # the API key is cached from here on
    with CaptureQueriesContext(connection) as queries:
        response = api.post("/v1/payments", payment_body(), key="one-step")
    assert response.status_code == 202
    key_writes = [q["sql"].split()[0] for q in queries.captured_queries if "payments_idempotencykey" in q["sql"]]
    assert key_writes.count("INSERT") == 1 and "UPDATE" not in key_writes
    statements = [q["sql"][:60] for q in queries.captured_queries]
    assert not any(sql.startswith("SAVEPOINT") for sql in statements), statements
    record = IdempotencyKey.objects.get(key="one-step")
    assert (record.recovery_point, record.object_id, record.locked_until) == ("finished", response.json()["id"], None)
    assert bytes(record.response_body) == response.content
