"""`make bench` (full, under 15 minutes) and `make bench QUICK=1` (under 2 minutes): `python -m bench [--quick]`.

Starts the stack in production shape on a fresh bench database, runs the scenarios (the bench.scenarios
package), prints the table, and writes `bench/results/bench-<UTC time>-<mode>.json` and `.png` (git-ignored).
Numbers are reported, never asserted: the exit status is 0 whenever the run itself worked.

Options: `--quick`; `--only accept,pipeline,relay,ledger` (a subset; ceiling and replay come with accept);
`--keep-logs` (keep `bench/results/run-…/`: process logs, the acquirer's SQLite file, the pgbench script);
`--update-doc` (replace this mode's results section of docs/performance.md with this run's table).
Environment: DATABASE_URL/REDIS_URL (else the embedded services), BENCH_DATABASE_NAME (`clearhouse_bench`),
BENCH_REDIS_DB, BENCH_PORT_BASE (8500: API, +1 acquirer, +2 receiver), BENCH_WEB_WORKERS, BENCH_WEB_THREADS,
BENCH_WEB_WORKER_CLASS, BENCH_WORKER_CONCURRENCY, BENCH_WORKER_POOL, BENCH_ACQUIRER_THREADS.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import string
import sys
import time
import traceback
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bench import report
from bench.ceiling import find_pgbench
from bench.scenarios.accept import scenario_accept_ceiling_replay
from bench.scenarios.ledger import scenario_ledger
from bench.scenarios.pipeline import scenario_pipeline
from bench.scenarios.relay import scenario_relay
from bench.scenarios.shared import Bench, Plan, machine
from bench.stack import BASE_DIR, Shape, Stack, prepare

RESULTS_DIR = BASE_DIR / "bench" / "results"
SCENARIOS = ("accept", "pipeline", "relay", "ledger")


def _say(text: str) -> None:
    print(f"[bench] {text}", flush=True)


def _run_id() -> str:
    """Six lower-case letters: no digits, so keys built from it never look like card numbers."""
    return "".join(secrets.choice(string.ascii_lowercase) for _ in range(6))


def _create_endpoint(api_url: str, api_key: str, receiver_url: str) -> str:
    """Create the pipeline merchant's webhook endpoint (payment.captured) through the API; return its secret."""
    body = json.dumps({"url": receiver_url + "/", "enabled_events": ["payment.captured"]}).encode()
    request = urllib.request.Request(  # noqa: S310 (a local URL)
        f"{api_url}/webhook_endpoints",
        data=body,
        method="POST",
        headers={
            "Authorization": f"Bearer {api_key}",
            "Idempotency-Key": "bench-endpoint-" + _run_id(),
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (a local URL)
        return str(json.loads(response.read())["secret"])


def _servers(b: Bench) -> dict[str, Any]:
    """The PostgreSQL and Redis the run used, with the settings that bound the ceiling."""
    import redis

    pg = {
        name: b.sql(f"SHOW {name}")[0][0]  # a fixed list of setting names
        for name in ("server_version", "synchronous_commit", "fsync", "shared_buffers", "max_connections")
    }
    info = redis.Redis.from_url(b.prepared.redis_url).info("server")
    return {
        "postgres": {**pg, "embedded": b.prepared.embedded, "database": b.prepared.database_name},
        "redis": {"version": info.get("redis_version"), "embedded": b.prepared.embedded},
    }


def main(argv: list[str] | None = None) -> int:
    """Run the bench; returns 0 when it ran (whatever the numbers), 1 when the stack could not run."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default=",".join(SCENARIOS))
    parser.add_argument("--keep-logs", action="store_true")
    parser.add_argument("--update-doc", action="store_true", help="put this run's table in docs/performance.md")
    args = parser.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(only) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")

    began = time.monotonic()
    started = datetime.now(UTC)
    stamp = started.strftime("%Y%m%d-%H%M%S")
    plan = Plan.quick() if args.quick else Plan.full()
    workdir = RESULTS_DIR / f"run-{stamp}"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    results: dict[str, Any] = {
        "mode": plan.name,
        "started_at": started.isoformat(timespec="seconds"),
        "machine": machine(),
        "plan": plan.__dict__,
        "scenarios": {},
        "errors": {},
    }
    _say(f"{plan.name} run {stamp} on {cores} cores")

    prepared = prepare(workdir=workdir)
    os.environ.update(prepared.env)
    os.environ["LOG_LEVEL"] = os.environ.get("BENCH_LOG_LEVEL", "WARNING")  # this process only: keep stdout readable
    import django

    django.setup()

    shape = Shape.from_env(cores)
    stack = Stack(prepared=prepared, shape=shape)
    status = 0
    try:
        _say("starting the stack (acquirer, API, Celery worker and beat)")
        stack.start()
        b = Bench(
            plan=plan,
            prepared=prepared,
            shape=shape,
            stack=stack,
            cores=cores,
            run_id=_run_id(),
            pgbench=find_pgbench(),
        )
        pipeline = b.merchant("pipeline")
        secret = _create_endpoint(b.api_url, pipeline["api_key"], b.receiver_url)
        stack.start_receiver(secret)
        results["servers"] = _servers(b)
        results["setup"] = b.setup()
        steps: list[tuple[str, Callable[[], Any]]] = []
        if "accept" in only:
            steps.append(("accept", lambda: scenario_accept_ceiling_replay(b)))
        if "pipeline" in only:
            steps.append(("pipeline", lambda: {"pipeline": scenario_pipeline(b)}))
        if "relay" in only:
            steps.append(("relay", lambda: {"relay": scenario_relay(b)}))
        for name, step in steps:
            _say(f"scenario {name} ({time.monotonic() - began:.0f} s so far)")
            try:
                results["scenarios"].update(step())
            except Exception as exc:  # one failing scenario must not lose the others' numbers
                traceback.print_exc()
                results["errors"][name] = f"{type(exc).__name__}: {exc}"
                if stack.dead():
                    _say(f"stack processes died ({', '.join(stack.dead())}); stopping")
                    break
    except Exception as exc:
        traceback.print_exc()
        results["errors"]["stack"] = f"{type(exc).__name__}: {exc}"
        status = 1
    finally:
        _say("stopping the stack")
        stack.stop()

    if "ledger" in only and status == 0:
        _say("scenario ledger")
        results["scenarios"]["ledger"] = scenario_ledger(b)
    if prepared.stop_embedded:
        from config import embedded

        embedded.stop()

    results["elapsed_s"] = round(time.monotonic() - began, 1)
    json_path = RESULTS_DIR / f"bench-{stamp}-{plan.name}.json"
    png_path = RESULTS_DIR / f"bench-{stamp}-{plan.name}.png"
    report.write_json(results, json_path)
    drew = report.chart(results, png_path)
    print()
    print(report.doc_section(results).split("\n", 1)[0])
    print()
    print(report.format_table(report.rows(results)))
    print()
    print("Setup:")
    print("\n".join(report.setups(results)))
    for note in report.notes(results):
        print(f"Note: {note}")
    for name, error in results["errors"].items():
        print(f"ERROR in {name}: {error}")
    print(
        f"\nresults: {json_path.relative_to(BASE_DIR)}"
        + (f"\nchart:   {png_path.relative_to(BASE_DIR)}" if drew else "")
    )
    print(f"elapsed: {results['elapsed_s']} s")
    if args.update_doc:
        doc = BASE_DIR / "docs" / "performance.md"
        start, end = report.doc_markers(plan.name)
        doc.write_text(report.replace_between(doc.read_text(), report.doc_section(results), start=start, end=end))
        print(f"updated: {doc.relative_to(BASE_DIR)}")
    if not args.keep_logs and status == 0 and not results["errors"]:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"logs:    {workdir.relative_to(BASE_DIR)}/logs")
    return status


if __name__ == "__main__":
    sys.exit(main())
