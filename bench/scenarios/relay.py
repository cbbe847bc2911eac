"""Scenario 4 of the bench, the worker consuming: the outbox relay against no-op Celery tasks, same workers.

`scenario_relay` alternates rounds of N outbox rows for the no-op subscriber (bench.noop) drained by the worker
with rounds of N no-op Celery tasks (bench.tasks) consumed by the same worker processes on the same broker, and
compares the medians: relay events/s ÷ Celery tasks/s.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from bench import stats
from bench.scenarios.shared import Bench, say
from bench.stack import BENCH_QUEUE, NOOP_QUEUE


def _relay_round(b: Bench, *, n: int, tag: str) -> dict[str, Any]:
    """Commit `n` rows for the no-op subscriber at once, wake every worker process, time until all are done."""
    from django.db import transaction

    from bench.noop import SUBSCRIBER, TOPIC
    from config.platform.outbox import engine as outbox

    meter = b.meter()
    with transaction.atomic():
        for i in range(n):
            outbox.publish(TOPIC, key=f"{b.run_id}-{tag}-{i}", payload={"i": i})
        meter.start()
        t0 = time.time()
    for _ in range(b.shape.worker_concurrency - 1):  # publish's own nudge wakes one
        outbox.nudge()
    deadline = time.monotonic() + b.plan.relay_timeout
    like = f"{b.run_id}-{tag}-%"
    while time.monotonic() < deadline:
        left = b.sql(
            "SELECT count(*) FROM payments_outboxmessage WHERE subscriber = %s AND status = 'pending'", (SUBSCRIBER,)
        )[0][0]
        if left == 0:
            break
        time.sleep(0.05)
    cpu = meter.stop()
    done, dead, first, last = b.sql(
        "SELECT count(*) FILTER (WHERE status = 'done'), count(*) FILTER (WHERE status = 'dead'),"
        " extract(epoch FROM min(processed_at))::float8, extract(epoch FROM max(processed_at))::float8"
        " FROM payments_outboxmessage WHERE subscriber = %s AND key LIKE %s",
        (SUBSCRIBER, like),
    )[0]
    seconds = (last or t0) - t0
    return {
        "events": n,
        "done": done,
        "dead": dead,
        "seconds": round(seconds, 3),
        "events_per_s": round(done / seconds, 1) if seconds > 0 else None,
        "first_event_after_s": round(first - t0, 3) if first else None,
        "cpu": cpu,
    }


def _celery_round(b: Bench, *, n: int) -> dict[str, Any]:
    """Queue `n` no-op tasks where the worker does not listen, let it consume them, time until the queue is empty.

    At that moment at most `concurrency` prefetched no-op tasks may still be running (well under a millisecond
    each), so the end is exact to within that.
    """
    import redis

    from bench.tasks import NOOP_TASK
    from config.celery import app

    r = redis.Redis.from_url(b.prepared.redis_url)
    r.delete(NOOP_QUEUE)
    with app.producer_or_acquire() as producer:
        for _ in range(n):
            app.send_task(NOOP_TASK, queue=NOOP_QUEUE, producer=producer)
    queued = int(r.llen(NOOP_QUEUE))
    meter = b.meter()
    meter.start()
    t0 = time.time()
    b.stack.set_consuming(NOOP_QUEUE, True)
    deadline = time.monotonic() + b.plan.relay_timeout
    while r.llen(NOOP_QUEUE) > 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    seconds = time.time() - t0
    cpu = meter.stop()
    left = int(r.llen(NOOP_QUEUE))
    b.stack.set_consuming(NOOP_QUEUE, False)
    r.delete(NOOP_QUEUE)
    return {
        "queued": queued,
        "left": left,
        "seconds": round(seconds, 3),
        "tasks_per_s": round((queued - left) / seconds, 1) if seconds > 0 else None,
        "cpu": cpu,
    }


def scenario_relay(b: Bench) -> dict[str, Any]:
    """Scenario 4: rows for the no-op subscriber drained by the worker vs no-op Celery tasks, same workers.

    The two alternate for `relay_rounds` rounds of `relay_events` each, and the median of each side is compared,
    so that a burst of load from elsewhere on the machine does not decide the ratio.
    """
    n, rounds = b.plan.relay_events, b.plan.relay_rounds
    leftover = b.sql("SELECT count(*) FROM payments_outboxmessage WHERE status = 'pending'")[0][0]
    dropped = None
    if leftover:
        b.stack.set_consuming(BENCH_QUEUE, False)
        dropped = b.drop_backlog()
        b.stack.set_consuming(BENCH_QUEUE, True)
    relay_runs, celery_runs = [], []
    for k in range(rounds):
        relay_runs.append(_relay_round(b, n=n, tag=f"noop{k}"))
        celery_runs.append(_celery_round(b, n=n))
        say(
            f"relay round {k + 1}: {relay_runs[-1]['events_per_s']} events/s; "
            f"celery no-op: {celery_runs[-1]['tasks_per_s']} tasks/s"
        )
    relay_rate = _median([r["events_per_s"] for r in relay_runs])
    celery_rate = _median([r["tasks_per_s"] for r in celery_runs])
    return {
        "setup": b.setup(
            events_per_round=n,
            rounds=rounds,
            drain_tasks=b.shape.worker_concurrency,
            outbox_batch_size=_setting("OUTBOX_BATCH_SIZE"),
        ),
        "relay": {"events_per_s": relay_rate, "rounds": relay_runs},
        "celery_noop": {"tasks_per_s": celery_rate, "rounds": celery_runs},
        "ratio": stats.ratio(relay_rate, celery_rate),
        "rule": "median of the rounds on each side; the rounds alternate relay, Celery, relay, Celery, …",
        "backlog_dropped_before": dropped,
    }


def _median(values: list[float | None]) -> float | None:
    present = sorted(v for v in values if v is not None)
    return statistics.median(present) if present else None


def _setting(name: str) -> Any:
    from django.conf import settings

    return getattr(settings, name)
