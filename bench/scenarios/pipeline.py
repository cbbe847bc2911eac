"""Scenario 3 of the bench, the worker consuming: payments through the whole pipeline, then the ledger checked.

`scenario_pipeline` sends a burst of N payments through the API and waits until every one is captured, posted
to the ledger and its `payment.captured` webhook verified by the receiver (bench.receiver), sampling the
backlog every 0.5 s (`_Poller`); then runs fixed arrival rates (the plan's, plus a paced rate at 80% of the
capacity the burst measured) and watches whether the backlog stays flat. Afterwards `ledger_verify` runs
`manage.py ledger_verify` on the bench database.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request
from typing import Any

from bench import stats
from bench.scenarios.shared import Bench, last_json, say
from bench.stack import BASE_DIR, BENCH_QUEUE


class _Poller:
    """Samples the pipeline's backlog every `interval` seconds in a thread: payments accepted since `since`,
    their `payment.captured` webhooks received, and pending outbox rows (all subscribers)."""

    def __init__(self, b: Bench, *, merchant_id: str, since: float, interval: float = 0.5):
        self.b, self.merchant_id, self.since, self.interval = b, merchant_id, since, interval
        self.samples: list[dict[str, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.t0 = time.time()

    def start(self) -> None:
        """Start sampling."""
        self.t0 = time.time()
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling and wait for the thread."""
        self._stop.set()
        self._thread.join()

    def latest(self) -> dict[str, float] | None:
        """The newest sample, if any."""
        return self.samples[-1] if self.samples else None

    def _loop(self) -> None:
        import psycopg

        with psycopg.connect(self.b.prepared.database_url, autocommit=True) as db:
            while not self._stop.is_set():
                accepted = db.execute(
                    "SELECT count(*) FROM payments_payment WHERE merchant_id = %s AND created_at >= to_timestamp(%s)",
                    (self.merchant_id, self.since),
                ).fetchone()[0]
                pending = db.execute("SELECT count(*) FROM payments_outboxmessage WHERE status = 'pending'").fetchone()[
                    0
                ]
                delivered = receiver_stats(self.b, since=self.since)["by_type"].get("payment.captured", 0)
                self.samples.append(
                    {
                        "t": round(time.time() - self.t0, 2),
                        "accepted": accepted,
                        "webhooks": delivered,
                        "in_flight": accepted - delivered,
                        "outbox_pending": pending,
                    }
                )
                self._stop.wait(self.interval)


def receiver_stats(b: Bench, *, since: float = 0.0) -> dict[str, Any]:
    """The receiver's counters (GET /stats), counting only payments created at or after `since` (unix s)."""
    url = f"{b.receiver_url}/stats?since={since}"
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (local URL)
        return json.loads(response.read())


def _receiver_events(b: Bench, kind: str) -> dict[str, float]:
    url = f"{b.receiver_url}/events?type={kind}"
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 (local URL)
        return {p: t for p, t in json.loads(response.read())["events"]}


def _pipeline_outcome(b: Bench, *, merchant_id: str, since: float) -> dict[str, Any]:
    """Latencies and completeness of the payments `merchant_id` made since `since` (unix seconds)."""
    rows = b.sql(
        "SELECT id, status, extract(epoch FROM created_at)::float8, extract(epoch FROM authorized_at)::float8"
        " FROM payments_payment WHERE merchant_id = %s AND created_at >= to_timestamp(%s)",
        (merchant_id, since),
    )
    ids = [r[0] for r in rows]
    posted = b.sql(
        "SELECT count(*) FROM ledger_transaction WHERE code = 'capture' AND reference = ANY(%s)",
        ([f"payment:{i}" for i in ids],),
    )[0][0]
    rows_done = b.sql(
        "SELECT count(*) FROM payments_outboxmessage WHERE status = 'done' AND processed_at >= to_timestamp(%s)",
        (since,),
    )[0][0]
    hooks = _receiver_events(b, "payment.captured")
    to_auth = [r[3] - r[2] for r in rows if r[3] is not None]
    to_hook = [hooks[r[0]] - r[2] for r in rows if r[0] in hooks]
    first = min((r[2] for r in rows), default=None)
    last_hook = max((hooks[i] for i in ids if i in hooks), default=None)
    done = sum(1 for i in ids if i in hooks)
    return {
        "outbox_rows_done": rows_done,
        "accepted": len(ids),
        "captured": sum(1 for r in rows if r[1] == "captured"),
        "ledger_captures": posted,
        "webhooks_received": done,
        "complete": bool(ids) and done == len(ids) and posted == len(ids),
        "first_accept_unix": first,
        "last_webhook_unix": last_hook,
        "accept_to_authorized_ms": stats.latency_summary_ms(to_auth),
        "accept_to_webhook_ms": stats.latency_summary_ms(to_hook),
        "series_accept_to_authorized": _per_second([(r[2], r[3] - r[2]) for r in rows if r[3] is not None], first),
        "series_accept_to_webhook": _per_second([(r[2], hooks[r[0]] - r[2]) for r in rows if r[0] in hooks], first),
    }


def _per_second(points: list[tuple[float, float]], origin: float | None) -> list[dict[str, float]]:
    if not points or origin is None:
        return []
    buckets = stats.timeline(
        [t - origin for t, _ in points], [v for _, v in points], [True] * len(points), [0] * len(points)
    )
    return [{"t": x.t, "count": x.count, "p50_ms": x.p50_ms, "p99_ms": x.p99_ms} for x in buckets]


def _wait_for(b: Bench, poller: _Poller, *, target: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        latest = poller.latest()
        if latest and latest["webhooks"] >= target and latest["accepted"] >= target:
            return True
        if b.stack.dead():
            raise RuntimeError(f"stack processes died: {b.stack.dead()}")
        time.sleep(0.25)
    return False


def _db_now(b: Bench) -> float:
    return float(b.sql("SELECT extract(epoch FROM clock_timestamp())::float8")[0][0])


#: Outbox rows one automatic-capture payment makes: authorize, capture, the fan-outs of payment.created,
#: payment.authorized and payment.captured, the fraud score, and the delivery of the one event the bench's
#: endpoint subscribes to (payment.captured).
ROWS_PER_PAYMENT = 7


def scenario_pipeline(b: Bench) -> dict[str, Any]:
    """Scenario 3: a burst of N payments end to end, then fixed-rate runs. Worker consuming."""
    p = b.plan
    merchant = b.merchant("pipeline")
    result: dict[str, Any] = {
        "setup": b.setup(
            burst_payments=p.burst_payments,
            burst_concurrency=p.burst_concurrency,
            fixed_rates=list(p.pipeline_rates),
            fixed_duration_s=p.pipeline_duration,
            webhook_events="payment.captured",
            workers_consuming=True,
        )
    }

    # Burst
    since = _db_now(b)
    poller = _Poller(b, merchant_id=merchant["id"], since=since)
    meter = b.meter()
    meter.start()
    poller.start()
    run = b.loadgen(
        merchant="pipeline",
        mode="closed",
        concurrency=p.burst_concurrency,
        max_requests=p.burst_payments,
        duration=p.burst_timeout,
        key_prefix=f"{b.run_id}-burst",
    )
    left = p.burst_timeout - (time.time() - poller.t0)
    finished = _wait_for(b, poller, target=run["ok"], timeout=max(0.5, left))
    burst_elapsed = time.time() - poller.t0
    time.sleep(0.6)
    poller.stop()
    cpu = meter.stop()
    outcome = _pipeline_outcome(b, merchant_id=merchant["id"], since=since)
    dropped = None
    if not finished:  # the fixed-rate runs must not start behind the burst's leftovers
        b.stack.set_consuming(BENCH_QUEUE, False)
        dropped = b.drop_backlog()
        b.stack.set_consuming(BENCH_QUEUE, True)
    span = (outcome["last_webhook_unix"] or 0) - (outcome["first_accept_unix"] or 0)
    burst = {
        "payments": p.burst_payments,
        "finished_within_timeout": finished,
        "timeout_s": p.burst_timeout,
        "timeout_rule": "from the first request: accepting and processing must both end within it",
        "backlog_dropped_after": dropped,
        "accept": {k: run[k] for k in ("throughput_rps", "latency_ms", "errors", "error_kinds", "generator")},
        "throughput_pps": round(outcome["webhooks_received"] / span, 1) if span > 0 else None,
        "span_s": round(span, 2),
        "cpu": cpu,
        "worker_cpu_ms_per_outbox_row": round(
            cpu["cpu_pct_of_one_core"].get("worker", 0)
            / 100
            * cpu["wall_s"]
            / max(outcome["outbox_rows_done"], 1)
            * 1000,
            2,
        ),
        "backlog": poller.samples,
        **outcome,
    }
    # What the worker got through during the burst: outbox rows handled per second over the rows one payment
    # needs is the pipeline's capacity on this machine (captures alone undercount it: the outbox is handled in
    # order, so a burst's captures wait behind all of its authorizations). A fixed-rate run at 80% of it shows
    # the latencies of a pipeline that keeps pace.
    burst["captured_pps"] = round(outcome["captured"] / max(burst_elapsed, 0.001), 1)
    burst["capacity_pps"] = round(outcome["outbox_rows_done"] / max(burst_elapsed, 0.001) / ROWS_PER_PAYMENT, 1)
    say(
        f"pipeline burst {p.burst_payments}: {burst['throughput_pps']} payments/s end to end, "
        f"complete={outcome['complete']}, P99 accept→authorized {outcome['accept_to_authorized_ms']['p99']} ms"
    )
    result["burst"] = burst

    # Fixed rates
    fixed = []
    paced = max(5.0, float(round(0.8 * burst["capacity_pps"] / 5) * 5))
    rates = sorted({*p.pipeline_rates, paced}) if paced < max(p.pipeline_rates) else list(p.pipeline_rates)
    result["setup"]["fixed_rates"] = rates
    result["setup"]["paced_rate"] = {
        "rate": paced,
        "rule": f"80% of the burst's capacity (outbox rows handled/s ÷ {ROWS_PER_PAYMENT}), rounded to 5/s",
    }
    for rate in rates:
        since = _db_now(b)
        poller = _Poller(b, merchant_id=merchant["id"], since=since)
        meter = b.meter()
        meter.start()
        poller.start()
        run = b.loadgen(
            merchant="pipeline",
            mode="open",
            rate=rate,
            concurrency=64,
            duration=p.pipeline_duration,
            key_prefix=f"{b.run_id}-rate{int(rate)}",
            request_timeout=10,
            drain_timeout=min(10, p.pipeline_drain_timeout),
        )
        load_end = time.time() - poller.t0
        drained = _wait_for(b, poller, target=run["ok"], timeout=p.pipeline_drain_timeout)
        drain_s = round(time.time() - poller.t0 - load_end, 2)
        time.sleep(0.6)
        poller.stop()
        cpu = meter.stop()
        outcome = _pipeline_outcome(b, merchant_id=merchant["id"], since=since)
        half = [(s["t"], s["in_flight"]) for s in poller.samples if load_end / 2 <= s["t"] <= load_end]
        growth = stats.slope(half)
        entry = {
            "rate": rate,
            "duration_s": p.pipeline_duration,
            "accept": {k: run[k] for k in ("throughput_rps", "latency_ms", "errors", "error_kinds", "generator")},
            "backlog_growth_per_s": round(growth, 2),
            "backlog_flat": growth <= 0.05 * rate,
            "flat_rule": "least-squares growth of payments in flight, second half of the load, <= 5% of the rate",
            "max_in_flight": max((s["in_flight"] for s in poller.samples), default=0),
            "drained": drained,
            "drain_after_load_s": drain_s if drained else None,
            "cpu": cpu,
            "backlog": poller.samples,
            **outcome,
        }
        fixed.append(entry)
        say(
            f"pipeline {rate:.0f}/s: backlog growth {entry['backlog_growth_per_s']}/s (flat={entry['backlog_flat']}),"
            f" P99 accept→authorized {outcome['accept_to_authorized_ms']['p99']} ms, drained={drained}"
        )
        if not drained:
            b.stack.set_consuming(BENCH_QUEUE, False)
            entry["backlog_dropped"] = b.drop_backlog()
            b.stack.set_consuming(BENCH_QUEUE, True)
    result["fixed_rate"] = fixed
    result["ledger_verify"] = ledger_verify(b)
    say(f"ledger_verify after the pipeline: {result['ledger_verify'].get('ok')}")
    return result


def ledger_verify(b: Bench) -> dict[str, Any]:
    """`manage.py ledger_verify --format json` on the bench database: the pipeline kept the ledger's invariants.

    Returns {ok, exit_status, checks: [{name, examined, ok}]} or {ok: None, error} when it could not run.
    """
    proc = subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), "ledger_verify", "--format", "json"],
        capture_output=True,
        text=True,
        cwd=BASE_DIR,
        env=b.prepared.env,
        timeout=120,
        check=False,
    )
    parsed = last_json(proc.stdout)
    if parsed is None:
        return {"ok": None, "exit_status": proc.returncode, "error": proc.stderr.strip()[-500:]}
    checks = [{k: c.get(k) for k in ("name", "examined", "ok")} for c in parsed.get("checks", [])]
    return {"ok": parsed.get("ok"), "exit_status": proc.returncode, "checks": checks}
