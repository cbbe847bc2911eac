"""The benchmark's pure helpers (bench/): percentiles, pacing, rate search, trend, pgbench script and output,
URL rewriting, report rows, profile summaries and reading a child process's JSON. No load is generated here:
`make bench` reports numbers, tests never time anything."""

from __future__ import annotations

import math

import pytest

from bench import ceiling, report, stats
from bench.loadgen import idempotency_key, payment_body
from bench.profile import frame_package, summarize
from bench.scenarios.shared import last_json
from bench.stack import with_database, with_redis_db
from config.platform.http.middleware import _CANDIDATE, luhn_valid


def test_percentile_uses_nearest_rank() -> None:
    values = list(range(1, 101))
    assert stats.percentile(values, 50) == 50
    assert stats.percentile(values, 99) == 99
    assert stats.percentile(values, 99.9) == 100
    assert stats.percentile(values, 100) == 100
    assert stats.percentile(values, 0) == 1
    assert stats.percentile([7.0], 99) == 7.0


def test_percentile_of_nothing_is_nan_and_out_of_range_is_refused() -> None:
    assert math.isnan(stats.percentile([], 50))
    with pytest.raises(ValueError):
        stats.percentile([1.0], 101)


def test_latency_summary_reports_milliseconds() -> None:
    summary = stats.latency_summary_ms([0.001, 0.002, 0.003, 0.004])
    assert summary == {"count": 4, "mean": 2.5, "p50": 2.0, "p90": 4.0, "p99": 4.0, "p999": 4.0, "max": 4.0}
    assert stats.latency_summary_ms([])["count"] == 0


def test_open_loop_schedule_is_constant_rate_from_intended_starts() -> None:
    assert stats.intended_start(10.0, 0, 200.0) == 10.0
    assert stats.intended_start(10.0, 200, 200.0) == pytest.approx(11.0)
    assert stats.intended_start(10.0, 3, 4.0) == pytest.approx(10.75)
    with pytest.raises(ValueError):
        stats.intended_start(0.0, 1, 0.0)


def test_timeline_buckets_by_start_second_without_gaps() -> None:
    buckets = stats.timeline(
        starts=[0.1, 0.5, 2.2],
        latencies=[0.010, 0.030, 0.020],
        oks=[True, False, True],
        inflight=[1, 2, 1],
    )
    assert [b.t for b in buckets] == [0.0, 1.0, 2.0]
    assert [b.count for b in buckets] == [2, 0, 1]
    assert buckets[0].errors == 1
    assert buckets[0].p99_ms == 10.0  # failed requests are not in the latency percentiles
    assert buckets[0].inflight_max == 2
    assert math.isnan(buckets[1].p50_ms)


def test_slope_tells_flat_from_growing_backlog() -> None:
    assert stats.slope([(0, 5), (1, 5), (2, 5)]) == 0.0
    assert stats.slope([(0, 0), (1, 10), (2, 20)]) == pytest.approx(10.0)
    assert stats.slope([(1, 3)]) == 0.0


def test_rate_search_climbs_falls_then_bisects() -> None:
    search = stats.RateSearch().record(100, True)
    assert search.next_rate() == 125
    search = search.record(125, False)
    assert search.next_rate() == 112
    search = search.record(112, True).record(118, True).record(121, True)
    assert search.next_rate() is None  # 121 … 125 is within 5 %
    assert stats.RateSearch().record(100, False).next_rate() == 60


def test_sustainable_needs_p99_within_limit_and_no_errors() -> None:
    assert stats.sustainable(49.9, 0)
    assert not stats.sustainable(50.1, 0)
    assert not stats.sustainable(10.0, 1)
    assert not stats.sustainable(math.nan, 0)


def test_ratio_is_none_without_a_ceiling() -> None:
    assert stats.ratio(50, 200) == 0.25
    assert stats.ratio(50, 0) is None
    assert stats.ratio(None, 10) is None


CAPTURED = [
    "SELECT 1",
    "SELECT * FROM payments_idempotencykey WHERE key = 'run-capture-one' AND merchant_id = "
    "'mer_01m7xpgka431qpgqzyjh4e7ch8'",
    "BEGIN",
    "SELECT pg_try_advisory_xact_lock(-8212745589127354368)",
    "INSERT INTO payments_payment (id, merchant_id) VALUES ('pay_01m7xpgknphb5hnhwbhsn9b1nk', "
    "'mer_01m7xpgka431qpgqzyjh4e7ch8')",
    "INSERT INTO payments_event (id, payment_id, data) VALUES ('evt_01m7xpgkp0a5r7r6w5xs8v3k2m', "
    "'pay_01m7xpgknphb5hnhwbhsn9b1nk', '{\"id\": \"pay_01m7xpgknphb5hnhwbhsn9b1nk\"}'::jsonb)",
    "COMMIT",
]


def test_pgbench_script_makes_created_ids_and_keys_unique_per_transaction() -> None:
    script = ceiling.pgbench_script(
        CAPTURED, keep_ids={"mer_01m7xpgka431qpgqzyjh4e7ch8"}, unique_literals={"run-capture-one": "pgb-:uid"}
    )
    lines = script.splitlines()
    assert lines[1].startswith("\\set uid random(")
    assert lines[2].startswith("\\set lock random(")
    body = lines[3:]
    assert body[0] == "SELECT 1;"
    assert "key = 'pgb-:uid'" in body[1]
    assert "'mer_01m7xpgka431qpgqzyjh4e7ch8'" in body[1]  # pre-existing rows are kept
    assert body[3] == "SELECT pg_try_advisory_xact_lock(:lock);"
    assert "'pay_pgb0x:uid'" in body[4]
    assert "'evt_pgb1x:uid', 'pay_pgb0x:uid'" in body[5]  # the same id maps to the same variable
    assert '"id": "pay_pgb0x:uid"' in body[5]
    assert all(line.endswith(";") for line in body)
    assert "01m7xpgknphb5hnhwbhsn9b1nk" not in script


PGBENCH_OUTPUT = """\
pgbench (18.4, server 15.20 (Debian 15.20-0+deb12u1))
transaction type: accept.pgbench.sql
scaling factor: 1
query mode: simple
number of clients: 8
number of threads: 2
maximum number of tries: 1
duration: 5 s
number of transactions actually processed: 4210
number of failed transactions: 0 (0.000%)
latency average = 9.503 ms
initial connection time = 12.345 ms
tps = 841.834127 (without initial connection time)
statement latencies in milliseconds and failures:
         0.002           0  \\set uid random(1, 999999999999999)
         0.250           0  SELECT 1;
         4.100           0  COMMIT;
"""


def test_parse_pgbench_reads_tps_latency_and_statements() -> None:
    parsed = ceiling.parse_pgbench(PGBENCH_OUTPUT)
    assert parsed["tps"] == pytest.approx(841.834127)
    assert parsed["latency_avg_ms"] == pytest.approx(9.503)
    assert parsed["transactions"] == 4210
    assert parsed["failed"] == 0
    assert [s["sql"] for s in parsed["statements"]][1:] == ["SELECT 1;", "COMMIT;"]
    aborted = ceiling.parse_pgbench("pgbench: error: client 3 aborted in command 1 (set) of script 0")
    assert aborted["failed"] == 1
    assert aborted["tps"] is None


def test_database_and_redis_urls_are_rewritten_in_place() -> None:
    assert with_database("postgres://postgres@127.0.0.1:5432/clearhouse", "clearhouse_bench") == (
        "postgres://postgres@127.0.0.1:5432/clearhouse_bench"
    )
    assert with_database("postgresql://postgres:@/clearhouse?host=/x/.data/postgres", "postgres") == (
        "postgresql://postgres:@/postgres?host=/x/.data/postgres"
    )
    assert with_redis_db("redis://127.0.0.1:6379/0", 12) == "redis://127.0.0.1:6379/12"
    assert with_redis_db("unix:///x/redis.sock?db=0", 3) == "unix:///x/redis.sock?db=3"


def test_generated_payments_are_deterministic_valid_and_never_look_like_card_numbers() -> None:
    assert payment_body(42) == payment_body(42)
    assert payment_body(42) != payment_body(43)
    for i in (0, 1, 999_999, 12_345_678):
        body = payment_body(i)
        assert isinstance(body["amount"], int) and body["amount"] > 0
        text = str(body) + idempotency_key("abcdef-accept-c32", i)
        assert not any(luhn_valid(m.group().replace(" ", "").replace("-", "")) for m in _CANDIDATE.finditer(text))


def test_report_rows_cover_each_scenario_present() -> None:
    results = {
        "scenarios": {
            "relay": {"relay": {"events_per_s": 900.0}, "celery_noop": {"tasks_per_s": 1000.0}, "ratio": 0.9},
            "ledger": {"present": False},
        }
    }
    table = report.format_table(report.rows(results))
    assert "| relay vs Celery | outbox events dispatched/s (no-op subscriber) | 900 |" in table
    assert "0.90×" in table
    assert "not present" in table


def test_profile_summary_attributes_samples_to_packages() -> None:
    site = "/v/.venv/lib/python3.11/site-packages"
    collapsed = "\n".join(
        [
            f'process 1:"gunicorn";run ({site}/gunicorn/arbiter.py:1);execute ({site}/psycopg/cursor.py:2) 3',
            f"run ({site}/gunicorn/arbiter.py:1);loads (/usr/lib/python3.11/json/__init__.py:3) 1",
        ]
    )
    summary = summarize(collapsed)
    assert summary["samples"] == 4
    assert summary["by_package"] == [["psycopg", 0.75], ["gunicorn", 0.25]]
    assert frame_package("<module> (<frozen os>)") == "python"


def test_doc_section_replaces_only_what_lies_between_its_markers() -> None:
    start, end = report.doc_markers("full")
    text = f"# Performance\n\nintro\n\n{start}\nold table\n{end}\n\nafter\n"
    updated = report.replace_between(text, "| new |", start=start, end=end)
    assert updated == f"# Performance\n\nintro\n\n{start}\n| new |\n{end}\n\nafter\n"
    with pytest.raises(ValueError):
        report.replace_between("no markers", "x", start=start, end=end)


def test_ledger_rows_show_each_ledger_scenario_against_its_pgbench_ceiling() -> None:
    result = {
        "scenarios": [
            {
                "name": "shared",
                "description": "one shared receivable",
                "ledger_per_s": 300.0,
                "pgbench_tps": 1000.0,
                "ratio": 0.3,
            }
        ]
    }
    table = report.format_table(report.rows({"scenarios": {"ledger": {"present": True, "result": result}}}))
    assert (
        "| ledger, shared | postings/s (one shared receivable) | 300 | pgbench, same SQL: 1,000 tps | 0.30× |" in table
    )


def test_last_json_takes_the_whole_output_or_its_last_json_object_line() -> None:
    assert last_json('{"ok": true}') == {"ok": True}
    assert last_json('progress\n{"a": 1}\n{"a": 2}\ndone\n') == {"a": 2}
    assert last_json("[1, 2]") is None
    assert last_json("no json here") is None
