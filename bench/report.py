"""The bench's outputs: the summary table (stdout and docs/performance.md), the JSON file and the PNG chart.

`rows(results)` picks the headline numbers and ratios out of the results dict that bench/__main__.py builds;
`format_table` renders them as a Markdown table; `write_json` writes the results (NaN as null); `chart` draws
one PNG with two panels, latency over time and backlog over time, for the accept and pipeline scenarios.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

Row = tuple[str, str, str, str, str, str]
HEADER: Row = ("scenario", "metric", "value", "against", "ratio", "target")


def _num(value: Any, unit: str = "", digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    text = f"{value:,.{digits}f}" if isinstance(value, int | float) else str(value)
    return f"{text}{unit}"


def _ratio(value: Any) -> str:
    return "—" if value is None else f"{value:.2f}×"


def rows(results: dict[str, Any]) -> list[Row]:
    """The table's rows: (scenario, metric, value, what it is compared with, ratio, target)."""
    out: list[Row] = []
    s = results.get("scenarios", {})
    accept, ceiling, replay = s.get("accept"), s.get("ceiling"), s.get("replay")
    if accept:
        runs = ceiling["runs"] if ceiling else [{}] * len(accept["closed"])
        for run, pg in zip(accept["closed"], runs, strict=False):
            c = run["spec"]["concurrency"]
            lat = run["latency_ms"]
            out.append(
                (
                    f"accept, closed loop, {c} clients",
                    "payments/s (P50 / P99 / P99.9 ms; errors)",
                    f"{_num(run['throughput_rps'])} ({_num(lat['p50'], digits=1)} / {_num(lat['p99'], digits=1)} / "
                    f"{_num(lat['p999'], digits=1)}; {run['error_rate']:.2%})",
                    f"pgbench, same SQL, {pg.get('clients', '—')} clients: {_num(pg.get('tps'))} tps",
                    _ratio(pg.get("accept_ratio")),
                    "≥ 0.25×",
                )
            )
        for run in accept["open"]:
            lat = run["latency_ms"]
            out.append(
                (
                    f"accept, open loop, {_num(run['spec']['rate'])}/s",
                    "P50 / P99 / P99.9 ms; errors",
                    f"{_num(lat['p50'], digits=1)} / {_num(lat['p99'], digits=1)} / {_num(lat['p999'], digits=1)}; "
                    f"{run['error_rate']:.2%}",
                    "P99 ≤ 50 ms, no errors",
                    "",
                    "sustainable" if run.get("sustainable") else "not sustainable",
                )
            )
        per = [r["cpu"].get("cpu_ms_per_request", {}) for r in accept["closed"] if r.get("cpu")]
        api = [p["api"] for p in per if p.get("api") is not None]
        gen = [p["load generator"] for p in per if p.get("load generator") is not None]
        if api:
            out.append(
                (
                    "accept, closed loop",
                    "CPU ms per accept: API; load generator",
                    f"{_num(min(api, default=None), digits=2)}–{_num(max(api, default=None), digits=2)}; "
                    f"{_num(min(gen, default=None), digits=2)}–{_num(max(gen, default=None), digits=2)}",
                    "API budget at 850/s on 2 cores: < 2.35 ms for everything",
                    "",
                    "",
                )
            )
        out.append(
            (
                "accept",
                "sustainable rate (payments/s)",
                _num(accept.get("sustainable_rate_rps")),
                "highest fixed rate with P99 ≤ 50 ms, no errors",
                "",
                "≥ 850/s",
            )
        )
    if replay:
        out.append(
            (
                f"replay, closed loop, {replay['setup']['concurrency']} clients",
                "replays/s",
                _num(replay["run"]["throughput_rps"]),
                f"accept at the same concurrency: {_num(replay['accept_rps_same_concurrency'])}/s",
                _ratio(replay.get("ratio")),
                "≥ 2×",
            )
        )
    pipeline = s.get("pipeline")
    if pipeline:
        burst = pipeline["burst"]
        out.append(
            (
                f"pipeline, burst of {_num(burst['payments'])}",
                "payments/s end to end (complete?)",
                f"{_num(burst['throughput_pps'])} (complete)"
                if burst["complete"]
                else f"incomplete: {_num(burst['webhooks_received'])} of {_num(burst['payments'])} "
                f"in {_num(burst['timeout_s'])} s"
                + (
                    f"; capacity {_num(burst['capacity_pps'], digits=1)}/s (outbox rows/s ÷ 7)"
                    if burst.get("capacity_pps") is not None
                    else ""
                ),
                "accept → captured + ledger + webhook verified",
                "",
                "≥ 500/s",
            )
        )
        out.append(
            (
                f"pipeline, burst of {_num(burst['payments'])}",
                "P50 / P99 ms accept → authorized; → webhook",
                f"{_num(burst['accept_to_authorized_ms']['p50'])} / {_num(burst['accept_to_authorized_ms']['p99'])}; "
                f"{_num(burst['accept_to_webhook_ms']['p50'])} / {_num(burst['accept_to_webhook_ms']['p99'])}",
                "",
                "",
                "",
            )
        )
        if burst.get("worker_cpu_ms_per_outbox_row") is not None:
            out.append(
                (
                    f"pipeline, burst of {_num(burst['payments'])}",
                    "Celery worker CPU ms per outbox row handled",
                    _num(burst["worker_cpu_ms_per_outbox_row"], digits=1),
                    "7 rows per payment (authorize, capture, 3 fan-outs, fraud score, 1 delivery); budget at "
                    "500/s: < 4 ms per payment for everything",
                    "",
                    "",
                )
            )
        for f in pipeline["fixed_rate"]:
            a2a, a2w = f["accept_to_authorized_ms"], f["accept_to_webhook_ms"]
            out.append(
                (
                    f"pipeline, fixed {_num(f['rate'])}/s for {_num(f['duration_s'])} s",
                    "P50 / P99 ms accept → authorized; → webhook; backlog",
                    f"{_num(a2a['p50'])} / {_num(a2a['p99'])}; {_num(a2w['p50'])} / {_num(a2w['p99'])}; "
                    f"{'flat' if f['backlog_flat'] else 'GROWING'} ({f['backlog_growth_per_s']:+.1f}/s)",
                    "",
                    "",
                    "P99 → authorized ≤ 200 ms at 200/s; flat at 500/s",
                )
            )
    if pipeline and pipeline.get("ledger_verify"):
        lv = pipeline["ledger_verify"]
        verdict = {True: "all invariants hold", False: "BROKEN", None: f"could not run: {lv.get('error', '')[:60]}"}
        out.append(("pipeline, afterwards", "manage.py ledger_verify", verdict[lv.get("ok")], "", "", ""))
    relay = s.get("relay")
    if relay:
        out.append(
            (
                "relay vs Celery",
                "outbox events dispatched/s (no-op subscriber)",
                _num(relay["relay"]["events_per_s"]),
                f"no-op Celery tasks, same broker and workers: {_num(relay['celery_noop']['tasks_per_s'])}/s",
                _ratio(relay.get("ratio")),
                "≥ 1.0×",
            )
        )
    ledger = s.get("ledger")
    if ledger is not None:
        if not ledger.get("present"):
            out.append(("ledger", "postings/s vs pgbench", "not present", "", "", ""))
        elif "result" not in ledger:
            out.append(("ledger", "postings/s vs pgbench", f"failed: {ledger.get('error')}", "", "", ""))
        else:
            out.extend(_ledger_rows(ledger["result"]))
    return out


def _ledger_rows(result: dict[str, Any]) -> list[Row]:
    """Rows for bench.ledger's JSON: one per entry of its `scenarios` list when it has one (postings/s against
    pgbench tps and their ratio), else one per number found in it."""
    out: list[Row] = []
    scenarios = result.get("scenarios")
    if isinstance(scenarios, list) and all(isinstance(s, dict) for s in scenarios):
        for s in scenarios:
            value = next((s[k] for k in ("ledger_per_s", "postings_per_s") if k in s), None)
            ceiling = next((s[k] for k in ("pgbench_tps", "ceiling_tps") if k in s), None)
            out.append(
                (
                    f"ledger, {s.get('name', '?')}",
                    f"postings/s ({s.get('description', '')})".replace(" ()", ""),
                    _num(value),
                    f"pgbench, same SQL: {_num(ceiling)} tps",
                    _ratio(s.get("ratio")),
                    "",
                )
            )
        return out
    for key, value in _flat_numbers(result):
        out.append(("ledger", key, _ratio(value) if "ratio" in key else _num(value, digits=1), "", "", ""))
    return out


def _flat_numbers(obj: Any, prefix: str = "") -> list[tuple[str, float]]:
    """(dotted key, number) for every number in a nested dict (lists are skipped)."""
    found: list[tuple[str, float]] = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, bool):
                continue
            if isinstance(value, int | float):
                found.append((name, value))
            elif isinstance(value, dict):
                found.extend(_flat_numbers(value, name))
    return found


def format_table(table: list[Row]) -> str:
    """A Markdown table of `table` under HEADER."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in table]
    return "\n".join(lines)


def setups(results: dict[str, Any]) -> list[str]:
    """One line per scenario: its setup and the CPU its load generator took (% of one core)."""
    lines = []
    for name, scenario in results.get("scenarios", {}).items():
        setup = scenario.get("setup") if isinstance(scenario, dict) else None
        if not setup:
            continue
        gen = _generator_cpu(scenario)
        text = ", ".join(f"{k}={v}" for k, v in setup.items())
        busy = [b["machine_busy_pct"] for b in _cpu_blocks(scenario) if b.get("machine_busy_pct") is not None]
        extra = f"; load generator CPU {gen}" if gen else ""
        extra += f"; machine busy {min(busy):.0f}–{max(busy):.0f}%" if busy else ""
        lines.append(f"- {name}: {text}{extra}")
    return lines


def _generator_cpu(scenario: dict[str, Any]) -> str:
    values = []
    for run in [*scenario.get("closed", []), *scenario.get("open", []), scenario.get("run") or {}]:
        gen = run.get("cpu", {}).get("cpu_pct_of_one_core", {}).get("load generator")
        if gen is not None:
            values.append(gen)
    for run in [scenario.get("burst") or {}, *scenario.get("fixed_rate", [])]:
        gen = (run.get("accept") or {}).get("generator", {}).get("cpu_pct_of_one_core")
        if gen is not None:
            values.append(gen)
    if not values:
        return ""
    return f"{min(values):.0f}–{max(values):.0f}% of one core"


def doc_markers(mode: str) -> tuple[str, str]:
    """The marker lines around the results of a `mode` run (`full` or `quick`) in docs/performance.md."""
    return f"<!-- bench:{mode}-run:start -->", f"<!-- bench:{mode}-run:end -->"


def replace_between(text: str, new: str, *, start: str, end: str) -> str:
    """`text` with what lies between the `start` and `end` marker lines replaced by `new`.

    Raises ValueError when the markers are missing or out of order.
    """
    i, j = text.find(start), text.find(end)
    if i < 0 or j < i:
        raise ValueError(f"markers {start!r} … {end!r} not found in order")
    return text[: i + len(start)] + "\n" + new.strip("\n") + "\n" + text[j:]


def doc_section(results: dict[str, Any]) -> str:
    """The Markdown that `make bench BENCH_ARGS=--update-doc` puts between the markers of docs/performance.md."""
    m = results.get("machine", {})
    pg = results.get("servers", {}).get("postgres", {})
    lines = [
        f"Run {results.get('started_at')} ({results.get('mode')} mode, {results.get('elapsed_s')} s), commit "
        f"`{m.get('git_commit')}`, on {m.get('cpu_model')}, {m.get('cores')} cores, {m.get('memory_gb')} GB; "
        f"PostgreSQL {pg.get('server_version')} (synchronous_commit={pg.get('synchronous_commit')}, "
        f"fsync={pg.get('fsync')}), load average at start {m.get('load_average_at_start')}, CPU reference "
        f"{m.get('python_loop_us')} µs per `sum(range(1000))`.",
        "",
        format_table(rows(results)),
        "",
        *setups(results),
        *[f"- Note: {n}" for n in notes(results)],
    ]
    return "\n".join(lines)


def _cpu_blocks(obj: Any) -> list[dict[str, Any]]:
    """Every CpuMeter result (a dict with `machine_busy_pct`) nested anywhere in `obj`."""
    found = []
    if isinstance(obj, dict):
        if "machine_busy_pct" in obj:
            found.append(obj)
        for value in obj.values():
            found.extend(_cpu_blocks(value))
    elif isinstance(obj, list):
        for value in obj:
            found.extend(_cpu_blocks(value))
    return found


def notes(results: dict[str, Any]) -> list[str]:
    """Caveats a reader of the table needs: how busy the machine was, whether the load generator kept its
    schedule, whether pgbench got the clients it wanted, and which backlogs the bench had to drop."""
    out = []
    s = results.get("scenarios", {})
    busy = [b["machine_busy_pct"] for b in _cpu_blocks(s) if b.get("machine_busy_pct") is not None]
    if busy:
        out.append(
            f"Machine busy {min(busy):.0f}–{max(busy):.0f}% of all cores during the measurements (everything on "
            "the machine, the bench included); see `cpu` in the JSON for each component."
        )
    accept = s.get("accept") or {}
    for run in accept.get("open", []):
        lag = (run.get("schedule_lag_ms") or {}).get("p99")
        if lag is not None and lag > 5:
            out.append(
                f"Open loop at {_num(run['spec']['rate'])}/s: the generator's own schedule lag reached P99 "
                f"{lag:.1f} ms; latencies (from intended start times) include it."
            )
    for pg in (s.get("ceiling") or {}).get("runs", []):
        if pg.get("clients") is not None and pg.get("clients") != pg.get("clients_wanted"):
            out.append(f"pgbench ran {pg['clients']} clients instead of {pg['clients_wanted']} (free connections).")
    pipeline = s.get("pipeline") or {}
    for run in [pipeline.get("burst") or {}, *pipeline.get("fixed_rate", [])]:
        if run.get("backlog_dropped_after") or run.get("backlog_dropped"):
            out.append("A pipeline run did not finish in time; its leftover backlog was deleted before the next.")
    return out


def _clean(obj: Any) -> Any:
    if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


def write_json(results: dict[str, Any], path: Path) -> None:
    """Write `results` to `path` as indented JSON (NaN and infinities as null)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_clean(results), indent=2, default=str) + "\n")


def chart(results: dict[str, Any], path: Path) -> bool:
    """Draw latency over time (top) and backlog over time (bottom) for accept and pipeline into `path` (PNG).

    Returns False (and draws nothing) when neither scenario has data.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = results.get("scenarios", {})
    accept, pipeline = s.get("accept") or {}, s.get("pipeline") or {}
    if not accept and not pipeline:
        return False
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(14, 8), sharex=True)
    title = f"Clearhouse bench ({results.get('mode')}, {results.get('machine', {}).get('cores')} cores)"
    fig.suptitle(f"{title}: {results.get('started_at', '')}")

    timeline = accept.get("chart_run") or []
    if timeline:
        rate = _num(accept.get("chart_rate")) + "/s" + ("" if accept.get("chart_sustainable") else ", not sustainable")
        t = [b["t"] for b in timeline]
        top.plot(t, [_nan(b["p50_ms"]) for b in timeline], label=f"accept {rate}: P50", color="tab:blue", ls="--")
        top.plot(t, [_nan(b["p99_ms"]) for b in timeline], label=f"accept {rate}: P99", color="tab:blue")
        bottom.plot(
            t, [b["inflight_max"] for b in timeline], label=f"accept {rate}: requests in flight", color="tab:blue"
        )
    colours = ["tab:orange", "tab:red", "tab:purple"]
    for f, colour in zip(pipeline.get("fixed_rate", []), colours, strict=False):
        rate = _num(f["rate"])
        series = f.get("series_accept_to_authorized") or []
        top.plot(
            [b["t"] for b in series],
            [_nan(b["p99_ms"]) for b in series],
            color=colour,
            label=f"pipeline {rate}/s: P99 accept→authorized",
        )
        hooks = f.get("series_accept_to_webhook") or []
        top.plot(
            [b["t"] for b in hooks],
            [_nan(b["p99_ms"]) for b in hooks],
            color=colour,
            ls=":",
            label=f"pipeline {rate}/s: P99 accept→webhook",
        )
        backlog = f.get("backlog") or []
        bottom.plot(
            [b["t"] for b in backlog],
            [b["in_flight"] for b in backlog],
            color=colour,
            label=f"pipeline {rate}/s: payments in flight",
        )
    burst = pipeline.get("burst") or {}
    series = burst.get("series_accept_to_authorized") or []
    if series:
        top.plot(
            [b["t"] for b in series],
            [_nan(b["p99_ms"]) for b in series],
            color="tab:green",
            label=f"pipeline burst of {_num(burst['payments'])}: P99 accept→authorized",
        )
    if burst.get("backlog"):
        backlog = burst["backlog"]
        bottom.plot(
            [b["t"] for b in backlog],
            [b["in_flight"] for b in backlog],
            color="tab:green",
            label=f"pipeline burst of {_num(burst['payments'])}: payments in flight",
        )
        bottom.plot(
            [b["t"] for b in backlog],
            [b["outbox_pending"] for b in backlog],
            color="tab:green",
            ls="--",
            label="pipeline burst: pending outbox rows",
        )
    top.axhline(50, color="grey", lw=0.8, ls="-.", label="50 ms (accept P99 goal)")
    top.axhline(200, color="grey", lw=0.8, ls=":", label="200 ms (accept→authorized P99 goal)")
    top.set_yscale("log")
    top.set_ylabel("latency (ms, log scale)")
    top.set_title("Latency over time (per second of start)")
    top.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    bottom.set_yscale("symlog", linthresh=10)
    bottom.set_ylim(bottom=0)
    bottom.set_ylabel("backlog (count, symlog)")
    bottom.set_xlabel("seconds since the run started")
    bottom.set_title("Backlog over time")
    bottom.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    for ax in (top, bottom):
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _nan(value: Any) -> float:
    return math.nan if value is None else float(value)
