"""The outbox: rows written with the change, claimed with SKIP LOCKED, per-key order, backoff, dead letters,
lost broker, expired leases."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from config.platform.outbox import engine as outbox
from config.platform.outbox.models import OutboxMessage, OutboxStatus
from payments import commands
from payments.events import PUBLIC_EVENT_TYPES
from payments.models import Payment
from tests.conftest import MerchantClient, close_connection_after, drain_once, drain_outbox, payment_body

pytestmark = pytest.mark.django_db(transaction=True)

handled: list[tuple[str, int, int]] = []
handled_lock = threading.Lock()
fail_until: dict[str, int] = {}


@outbox.subscriber("tests.recorder", topics=["tests.topic"])
def recorder(message: outbox.Message) -> None:
    """A test subscriber: records (key, n, attempt); fails while fail_until["key:n"] ≥ attempt."""
    with handled_lock:
        handled.append((message.key, message.payload["n"], message.attempt))
    if fail_until.get(f"{message.key}:{message.payload['n']}", 0) >= message.attempt:
        raise RuntimeError(f"boom on attempt {message.attempt}")


@pytest.fixture(autouse=True)
def _reset() -> None:
    handled.clear()
    fail_until.clear()


def publish(key: str, n: int) -> None:
    with transaction.atomic():
        outbox.publish("tests.topic", key=key, payload={"n": n})


def test_rows_exist_only_if_the_change_committed(api: MerchantClient):
    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        outbox.publish("tests.topic", key="k", payload={"n": 1})
        raise Boom
    assert not OutboxMessage.objects.filter(topic="tests.topic").exists()

    # A payment whose transaction fails after the insert leaves neither the payment nor its outbox rows.
    from payments import services

    with pytest.raises(Boom), transaction.atomic():
        services.payment_create(merchant=api.merchant, mode="test", amount=1, currency="EUR", payment_method="tok_visa")
        raise Boom
    assert Payment.objects.count() == 0 and OutboxMessage.objects.count() == 0


def test_rows_of_one_key_are_handled_in_order_even_across_failures(settings):
    settings.OUTBOX_BACKOFF_BASE = settings.OUTBOX_BACKOFF_CAP = 0.0
    for n in range(3):
        publish("payment-a", n)
    publish("payment-b", 0)
    fail_until["payment-a:0"] = 2  # the first row of payment-a fails twice

    drain_outbox()

    order_a = [n for key, n, _ in handled if key == "payment-a"]
    assert order_a == [0, 0, 0, 1, 2]
    assert ("payment-b", 0, 1) in handled
    assert OutboxMessage.objects.filter(status=OutboxStatus.DONE).count() == 4


def test_a_claim_takes_only_the_head_of_each_key():
    for n in range(3):
        publish("k1", n)
    publish("k2", 0)
    claimed = outbox.claim(batch_size=10)
    assert sorted((c.key, c.payload["n"]) for c in claimed) == [("k1", 0), ("k2", 0)]


def test_failures_back_off_exponentially_then_dead_letter(settings):
    settings.OUTBOX_MAX_ATTEMPTS = 3
    settings.OUTBOX_BACKOFF_BASE = 10.0
    settings.OUTBOX_BACKOFF_CAP = 15.0
    fail_until["k:0"] = 99
    publish("k", 0)

    assert drain_once() == 1
    row = OutboxMessage.objects.get(topic="tests.topic")
    wait = (row.available_at - timezone.now()).total_seconds()
    assert row.status == "pending" and row.attempts == 1 and 4.0 <= wait <= 10.0  # in [base/2, base]
    assert drain_once() == 0  # not due yet

    OutboxMessage.objects.filter(pk=row.pk).update(available_at=timezone.now())
    drain_once()
    row.refresh_from_db()
    wait = (row.available_at - timezone.now()).total_seconds()
    assert row.attempts == 2 and 6.0 <= wait <= 15.0  # min(cap, 2 × base) = 15, jittered to [7.5, 15]

    OutboxMessage.objects.filter(pk=row.pk).update(available_at=timezone.now())
    drain_once()
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("dead", 3)
    assert "boom on attempt 3" in row.last_error
    assert not outbox.has_due_work()

    # An operator replays the dead letter; it runs again (and, fixed, succeeds).
    fail_until["k:0"] = 0
    assert outbox.replay(message_id=row.pk)
    drain_outbox()
    row.refresh_from_db()
    assert row.status == "done"


def test_backoff_delay_is_capped_and_jittered():
    policy = outbox.RetryPolicy(base_delay=1.0, max_delay=30.0)
    delays = [policy.delay_after(n) for n in range(1, 12)]
    assert all(d <= 30.0 for d in delays)
    assert 0.5 <= delays[0] <= 1.0 and 15.0 <= delays[-1] <= 30.0


def test_two_drainers_never_handle_the_same_row(settings):
    """Real threads with a barrier: each row is handled exactly once, though both claim at the same time."""
    for i in range(60):
        publish(f"key-{i}", 0)
    barrier = threading.Barrier(4)

    @close_connection_after
    def drainer() -> None:
        barrier.wait()
        outbox.drain(budget_seconds=30, batch_size=5)

    threads = [threading.Thread(target=drainer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    counts = Counter(key for key, _, _ in handled)
    assert len(counts) == 60
    assert set(counts.values()) == {1}
    assert OutboxMessage.objects.filter(status=OutboxStatus.DONE).count() == 60


def test_a_worker_that_died_mid_row_loses_nothing_the_lease_expires_and_another_takes_it():
    publish("k", 0)
    claimed = outbox.claim(batch_size=10, lease_seconds=30)  # a worker claims… and dies before finishing
    assert len(claimed) == 1
    assert outbox.claim(batch_size=10) == []  # leased: nobody else takes it

    OutboxMessage.objects.filter(pk=claimed[0].id).update(locked_until=timezone.now() - timedelta(seconds=1))
    drain_outbox()
    row = OutboxMessage.objects.get(pk=claimed[0].id)
    assert (row.status, row.attempts) == ("done", 2)
    assert handled == [("k", 0, 2)]

    # The dead worker's late report cannot overwrite the new outcome (its claim token is stale).
    outbox.process(claimed[0])
    row.refresh_from_db()
    assert row.status == "done"


def test_broker_down_nothing_is_lost_the_sweep_drains_later(api: MerchantClient, settings):
    """With the broker unreachable the API still accepts (202), the nudge fails quietly, the row waits."""
    from config.platform.outbox.tasks import outbox_sweep

    settings.OUTBOX_NUDGE = True
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    from config.celery import app

    app.conf.broker_url = "redis://127.0.0.1:1/0"
    app.pool.force_close_all()
    try:
        assert outbox.nudge() is False
        response = api.post("/v1/payments", payment_body())
        assert response.status_code == 202
        payment_id = response.json()["id"]
        assert OutboxMessage.objects.filter(key=payment_id, status="pending").count() == 2
    finally:
        app.conf.broker_url = settings.CELERY_BROKER_URL = _test_broker_url()
        app.pool.force_close_all()

    assert outbox_sweep() >= 2  # what beat runs every OUTBOX_SWEEP_INTERVAL seconds
    drain_outbox()
    assert Payment.objects.get(pk=payment_id).status == "captured"


def _test_broker_url() -> str:
    from django.conf import settings

    from config.settings.test import CELERY_BROKER_URL

    return settings.CELERY_BROKER_URL if "127.0.0.1:1/" not in settings.CELERY_BROKER_URL else CELERY_BROKER_URL


def _plan_nodes(plan: dict) -> list[dict]:
    nodes = [plan]
    for child in plan.get("Plans", []):
        nodes.extend(_plan_nodes(child))
    return nodes


def test_the_claim_plan_stays_index_lookups_when_statistics_say_nothing_is_pending():
    """Statistics taken while every row was done promise one pending row; a burst then leaves thousands. The
    shard check must still be an index lookup by key (not a scan of every pending row per candidate, which made
    a claim take seconds), and the claim must still return only the oldest pending row of each shard."""
    from django.db import connection

    OutboxMessage.objects.bulk_create(
        OutboxMessage(
            topic="tests.topic",
            subscriber="tests.recorder",
            key=f"old-{i}",
            payload={"n": 0},
            status="done",
            available_at=timezone.now(),
            created_at=timezone.now(),
        )
        for i in range(2000)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE payments_outboxmessage")
    now = timezone.now()
    OutboxMessage.objects.bulk_create(
        OutboxMessage(
            topic="tests.topic",
            subscriber="tests.recorder",
            key=f"burst-{i % 1500}",
            payload={"n": i // 1500},
            available_at=now,
            created_at=now,
        )
        for i in range(3000)
    )
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + outbox._CLAIM_SQL, {"lease": 30, "token": "plan", "batch": 50})
        plan = cursor.fetchone()[0]
    plan = plan[0]["Plan"] if isinstance(plan, list) else __import__("json").loads(plan)[0]["Plan"]
    scans = [n for n in _plan_nodes(plan) if n.get("Relation Name") == "payments_outboxmessage"]
    shard_checks = [n for n in scans if "Index Cond" in n and "key" in n["Index Cond"]]
    assert shard_checks and all(n["Index Name"] == "outbox_key" for n in shard_checks), scans
    assert not any("Seq Scan" == n["Node Type"] for n in scans), scans

    claimed = outbox.claim(batch_size=2000)
    assert len(claimed) == 1500
    assert {c.payload["n"] for c in claimed} == {0}  # the second row of each key waits for the first


def test_nudges_are_coalesced_but_the_last_request_is_always_followed_by_one(settings, monkeypatch):
    """Real threads request 200 nudges within one interval: a handful are sent, and one is sent after the last."""
    import time

    settings.OUTBOX_NUDGE_INTERVAL = 0.2
    sent: list[float] = []
    monkeypatch.setattr(outbox, "nudge", lambda **_: sent.append(time.monotonic()) or True)
    coalescer = outbox._NudgeCoalescer()
    last_request = [0.0]
    barrier = threading.Barrier(4)

    def requester() -> None:
        barrier.wait()
        for _ in range(50):
            last_request[0] = max(last_request[0], time.monotonic())
            coalescer.request()

    threads = [threading.Thread(target=requester) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    time.sleep(0.6)
    assert 1 <= len(sent) <= 3
    assert sent[-1] >= last_request[0]


def test_the_reaper_deletes_only_rows_handled_longer_ago_than_the_retention(settings):
    settings.OUTBOX_DONE_RETENTION = 3600
    now = timezone.now()

    def row(key: str, status: str, processed_ago: float | None) -> OutboxMessage:
        return OutboxMessage.objects.create(
            topic="tests.topic",
            subscriber="tests.recorder",
            key=key,
            payload={"n": 0},
            status=status,
            available_at=now,
            created_at=now,
            processed_at=None if processed_ago is None else now - timedelta(seconds=processed_ago),
        )

    old_done = [row(f"old-{i}", "done", 7200) for i in range(7)]
    kept = [row("recent", "done", 60), row("dead", "dead", 7200), row("pending", "pending", None)]

    assert outbox.reap_done(now=now, batch_size=3) == 7  # three batches: 3, 3, 1
    assert not OutboxMessage.objects.filter(pk__in=[r.pk for r in old_done]).exists()
    assert set(OutboxMessage.objects.values_list("key", flat=True)) == {r.key for r in kept}
    assert outbox.reap_done(now=now) == 0


slow_seen: list[list[str]] = []


@outbox.subscriber("tests.slow", topics=["tests.slow"])
def slow(message: outbox.Message) -> None:
    """A slow test subscriber: records the status of every tests.slow row, then takes 0.3 s."""
    import time

    slow_seen.append(
        list(OutboxMessage.objects.filter(topic="tests.slow").order_by("id").values_list("status", flat=True))
    )
    time.sleep(0.3)


def test_slow_handlers_get_their_rows_marked_done_before_half_the_lease_has_passed(settings):
    """Done-marks are batched, but a batch that outlives half its lease records what it finished so far."""
    settings.OUTBOX_LEASE_SECONDS = 0.4
    slow_seen.clear()
    with transaction.atomic():
        for i in range(3):
            outbox.publish("tests.slow", key=f"slow-{i}", payload={"n": i})
    assert outbox.drain(budget_seconds=30, batch_size=10) == 3
    assert slow_seen[0] == ["pending", "pending", "pending"]
    assert slow_seen[1][0] == "done" and slow_seen[2][:2] == ["done", "done"]
    assert set(OutboxMessage.objects.filter(topic="tests.slow").values_list("status", flat=True)) == {"done"}


def test_commands_keep_their_stored_topics_and_never_reach_merchants():
    """Commands (payments.commands) are the worker's work orders: their topic strings are stored in outbox rows, so
    they never change; none is a public event type, so no command has a webhook subscriber."""
    topics = [commands.COMMAND_CAPTURE, commands.COMMAND_VOID, commands.COMMAND_REFUND, commands.COMMAND_CANCEL_EXPIRED]
    assert topics == ["payments.capture", "payments.void", "payments.refund", "payments.cancel_expired"]
    assert not set(topics) & set(PUBLIC_EVENT_TYPES)
    for topic in topics:
        assert [s.name for s in outbox.subscribers_for(topic)] == ["payments.processor"]
