"""What every bench scenario shares: the run's `Plan`, the `Bench` context, `machine()` and output helpers.

`Plan` holds the sizes and durations of a quick or a full run. `Bench` holds the plan, the running stack and the
merchants of the run, and gives the scenarios the load generator (`loadgen`, in a child process, with the CPU
of every component), SQL on the bench database and `drop_backlog`. `machine()` describes what the numbers were
measured on; `say` prints a progress line; `last_json` reads the JSON a child process printed.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

from bench.stack import BASE_DIR, BENCH_QUEUE, CpuMeter, Prepared, Shape, Stack


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
        """A merchant of this run (created on first use through config.platform.merchants.services): {id, api_key}."""
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


def say(text: str) -> None:
    """Print a `[bench]` progress line, flushed at once."""
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


def last_json(text: str) -> dict[str, Any] | None:
    """`text` parsed, if it is a JSON object; else its last line that is one; None when neither is (or `text` is
    JSON but not an object)."""
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
