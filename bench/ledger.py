"""Ledger posting throughput against PostgreSQL's own ceiling for the same SQL (pgbench), in one run.

    .venv/bin/python -m bench.ledger [--quick] [--clients N] [--seconds S] [--merchants M]

Creates a throw-away database `<DATABASE_URL's name>_bench` (migrated like production), then for each scenario
measures, one after the other on that database:

- **ledger**: N client processes, each looping `ledger.services.transaction_post` (a capture-like posting:
  Dr processor_receivable / Cr a random merchant's pending, 100 minor units) in its own database transaction;
- **pgbench**: pgbench (PGBENCH) with N clients running the same statements the service issues (idempotency
  lookup, account lookup, INSERT of the ledger transaction, INSERT of its two entries, whose triggers update the
  balance rows, COMMIT with the deferred balance checks), without Python or Django.

Scenarios: `distinct` (every merchant has its own receivable: postings share no account), `shared` (every posting
debits the one platform receivable, whose balance is sharded: the design in docs/ledger.md) and `shared-hot`
(the same account with a single balance row: the hot row the design avoids).

The scenarios are interleaved over `--rounds` rounds and each figure is the median of its rounds, so a burst of
other work on a shared machine skews one round, not one scenario; the load average is recorded with the results.
Prints a table and writes JSON to bench/results/ledger-<UTC time>.json. Throughput is reported, never asserted:
it depends on the machine. `--quick` (about a minute: one round of 6 s runs); the default is 3 rounds of 15 s
(about 5 minutes). Drops the bench database at the end.
Needs DATABASE_URL (or the embedded PostgreSQL of `make run`) and pgbench (PGBENCH, default /usr/bin/pgbench).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
RESULTS_DIR = BASE_DIR / "bench" / "results"
AMOUNT = 100
CURRENCY = "EUR"


@dataclass(frozen=True)
class Scenario:
    """A posting pattern: which receivable each posting debits (`{m}` = the merchant number)."""

    name: str
    description: str
    receivable_owner: str  # may contain {m}
    shards: int | None  # balance rows of the receivable (None: the default for platform accounts)


SCENARIOS = [
    Scenario("distinct", "no shared account (a receivable per merchant)", "bench:platform:{m}", 1),
    Scenario("shared", "one shared platform receivable, sharded balance", "bench:platform", None),
    Scenario("shared-hot", "one shared platform receivable, single balance row", "bench:hot-platform", 1),
]


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")  # DEBUG off: no query log
    sys.path.insert(0, str(BASE_DIR))
    from config import embedded

    embedded.export_environment()
    import django

    django.setup()


def _refs(scenario: Scenario, m: int) -> tuple[Any, Any]:
    from ledger.contracts import AccountPurpose, AccountRef

    debit = AccountRef(
        owner=scenario.receivable_owner.format(m=m), purpose=AccountPurpose.PROCESSOR_RECEIVABLE, currency=CURRENCY
    )
    credit = AccountRef(owner=f"bench:merchant:{m}", purpose=AccountPurpose.MERCHANT_PENDING, currency=CURRENCY)
    return debit, credit


def _post(scenario: Scenario, m: int) -> None:
    from django.db import transaction

    from ledger import services
    from ledger.contracts import Leg, Side

    debit, credit = _refs(scenario, m)
    key = f"bench:{uuid.uuid4().hex}"
    with transaction.atomic():
        services.transaction_post(
            code="capture",
            reference="bench",
            idempotency_key=key,
            legs=[
                Leg(account=debit, side=Side.DEBIT, amount=AMOUNT),
                Leg(account=credit, side=Side.CREDIT, amount=AMOUNT),
            ],
        )


def _open_accounts(scenario: Scenario, merchants: int) -> None:
    from ledger import services

    for m in range(merchants):
        debit, credit = _refs(scenario, m)
        services.account_get_or_create(ref=debit, balance_shards=scenario.shards)
        services.account_get_or_create(ref=credit)


def _client(scenario: Scenario, merchants: int, start: float, seconds: float, seed: int, out: Any) -> None:
    from django.db import connection

    rng = random.Random(seed)
    while time.time() < start:
        time.sleep(0.001)
    done = 0
    deadline = start + seconds
    while time.time() < deadline:
        _post(scenario, rng.randrange(merchants))
        done += 1
    connection.close()
    out.put(done)


def run_ledger(scenario: Scenario, *, clients: int, seconds: float, merchants: int) -> float:
    """Postings per second through ledger.services with `clients` processes for `seconds`."""
    from django.db import connections

    connections.close_all()  # never share a connection with forked children
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    start = time.time() + 1.0
    procs = [
        ctx.Process(target=_client, args=(scenario, merchants, start, seconds, seed, out)) for seed in range(clients)
    ]
    for p in procs:
        p.start()
    total = sum(out.get(timeout=seconds + 120) for _ in procs)
    for p in procs:
        p.join()
    return total / seconds


PGBENCH_SCRIPT = r"""
\set m random(0, :merchants - 1)
BEGIN;
SELECT id FROM ledger_transaction WHERE idempotency_key = 'pgbench:' || :client_id || ':' || :m LIMIT 1;
SELECT id, owner, purpose, currency, balance_shards FROM ledger_account
  WHERE (owner = {debit} AND purpose = 'processor_receivable' AND currency = 'EUR')
     OR (owner = 'bench:merchant:' || :m AND purpose = 'pending' AND currency = 'EUR');
INSERT INTO ledger_transaction (code, kind, reference, idempotency_key, description, created_at)
  VALUES ('capture', 'posted', 'bench', 'pgbench:' || gen_random_uuid(), '', now()) RETURNING id AS txn \gset
INSERT INTO ledger_entry (transaction_id, account_id, side, pending, amount, currency) VALUES
  (:txn, (SELECT id FROM ledger_account WHERE owner = {debit} AND purpose = 'processor_receivable'
          AND currency = 'EUR'), 'debit', false, 100, 'EUR'),
  (:txn, (SELECT id FROM ledger_account WHERE owner = 'bench:merchant:' || :m AND purpose = 'pending'
          AND currency = 'EUR'), 'credit', false, 100, 'EUR');
END;
"""


def _pgbench_debit(scenario: Scenario) -> str:
    if "{m}" in scenario.receivable_owner:
        prefix = scenario.receivable_owner.replace("{m}", "")
        return f"'{prefix}' || :m"
    return f"'{scenario.receivable_owner}'"


def run_pgbench(scenario: Scenario, *, clients: int, seconds: float, merchants: int, pgbench: str) -> float:
    """Transactions per second of PGBENCH_SCRIPT on the bench database (pgbench's own count)."""
    from django.db import connection

    s = connection.settings_dict
    script = PGBENCH_SCRIPT.replace("{debit}", _pgbench_debit(scenario))
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(script)
    env = dict(os.environ)
    if s.get("PASSWORD"):
        env["PGPASSWORD"] = s["PASSWORD"]
    argv = [pgbench, "-n", "-M", "simple", "-c", str(clients), "-j", str(min(clients, os.cpu_count() or 1))]
    argv += ["-T", str(int(seconds)), "-D", f"merchants={merchants}", "-f", f.name]
    host = s.get("HOST") or (s.get("OPTIONS") or {}).get("host")  # the embedded server's socket directory
    if host:
        argv += ["-h", host]
    if s.get("PORT"):
        argv += ["-p", str(s["PORT"])]
    if s.get("USER"):
        argv += ["-U", s["USER"]]
    argv.append(s["NAME"])
    try:
        result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False, timeout=seconds + 120)
    finally:
        os.unlink(f.name)
    match = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", result.stdout)
    if result.returncode != 0 or match is None:
        raise RuntimeError(f"pgbench failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return float(match.group(1))


def statements_per_posting(scenario: Scenario) -> list[str]:
    """The SQL one ledger posting issues (accounts already open), as Django sends it."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        _post(scenario, 0)
    return [q["sql"] for q in ctx.captured_queries]


def _machine() -> dict[str, Any]:
    from django.db import connection

    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg = cursor.fetchone()[0]
    return {"cpus": os.cpu_count(), "cpu": model, "postgresql": pg, "python": platform.python_version()}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit status (0, or 1 when pgbench is missing or fails)."""
    parser = argparse.ArgumentParser(prog="python -m bench.ledger", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs (about a minute in all)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients (processes / pgbench -c)")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per measurement (quick 6, else 15)")
    parser.add_argument(
        "--rounds", type=int, default=None, help="interleaved rounds; medians are reported (quick 1, else 3)"
    )
    parser.add_argument("--merchants", type=int, default=1000, help="merchants postings are spread over")
    args = parser.parse_args(argv)
    seconds = args.seconds or (6.0 if args.quick else 15.0)
    rounds = args.rounds or (1 if args.quick else 3)
    pgbench = os.environ.get("PGBENCH", "/usr/bin/pgbench")
    if not shutil.which(pgbench):
        print(f"pgbench not found at {pgbench} (set PGBENCH)", file=sys.stderr)
        return 1

    _setup_django()
    from django.db import connection

    connection.settings_dict["TEST"] = {**connection.settings_dict.get("TEST", {})}
    connection.settings_dict["TEST"]["NAME"] = f"{connection.settings_dict['NAME']}_bench"
    original = connection.settings_dict["NAME"]
    print(f"creating database {connection.settings_dict['TEST']['NAME']} …", flush=True)
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False, serialize=False)
    samples: dict[str, dict[str, list[float]]] = {sc.name: {"ledger": [], "pgbench": []} for sc in SCENARIOS}
    load_before = os.getloadavg()
    try:
        machine = _machine()
        for scenario in SCENARIOS:
            _open_accounts(scenario, args.merchants)
        sql = statements_per_posting(SCENARIOS[1])
        for r in range(rounds):
            for scenario in SCENARIOS:
                print(f"round {r + 1}/{rounds} {scenario.name}: ledger …", end=" ", flush=True)
                ledger = run_ledger(scenario, clients=args.clients, seconds=seconds, merchants=args.merchants)
                print("pgbench …", end=" ", flush=True)
                ceiling = run_pgbench(
                    scenario, clients=args.clients, seconds=seconds, merchants=args.merchants, pgbench=pgbench
                )
                print(f"{ledger:.0f}/s, {ceiling:.0f}/s", flush=True)
                samples[scenario.name]["ledger"].append(ledger)
                samples[scenario.name]["pgbench"].append(ceiling)
    finally:
        connection.creation.destroy_test_db(original, verbosity=0)
    load_after = os.getloadavg()
    rows = []
    for scenario in SCENARIOS:
        ledger, ceiling = (statistics.median(samples[scenario.name][k]) for k in ("ledger", "pgbench"))
        rows.append(
            {
                **asdict(scenario),
                "ledger_per_s": ledger,
                "pgbench_tps": ceiling,
                "ratio": ledger / ceiling,
                "samples": samples[scenario.name],
            }
        )

    by = {r["name"]: r for r in rows}
    print()
    print(
        f"Ledger postings/s vs pgbench, same SQL, same database ({args.clients} clients, {seconds:g} s runs, "
        f"median of {rounds} interleaved round(s))"
    )
    print(f"machine: {machine['cpus']} × {machine['cpu']}, PostgreSQL {machine['postgresql']}")
    print(f"load average before/after: {load_before[0]:.1f} / {load_after[0]:.1f}")
    if max(load_before[0], load_after[0]) > (machine["cpus"] or 1):
        print("note: the machine was busy with other work; compare ratios within this run, not absolute rates")
    print(f"{'scenario':<12} {'':<50} {'ledger/s':>9} {'pgbench/s':>10} {'ledger÷pgbench':>15}")
    for r in rows:
        print(
            f"{r['name']:<12} {r['description']:<50} {r['ledger_per_s']:>9.0f} {r['pgbench_tps']:>10.0f} "
            f"{r['ratio']:>15.2f}"
        )
    shared_vs = {
        key: {k: by[key][k] / by["distinct"][k] for k in ("ledger_per_s", "pgbench_tps")}
        for key in ("shared", "shared-hot")
    }
    for key, ratios in shared_vs.items():
        print(
            f"{key} ÷ distinct: ledger {ratios['ledger_per_s']:.2f}, pgbench {ratios['pgbench_tps']:.2f}",
        )
    print(f"one posting = {len(sql)} statements from Django (pgbench script: 6 including BEGIN/END)")

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"ledger-{stamp}.json"
    path.write_text(
        json.dumps(
            {
                "benchmark": "ledger",
                "when": stamp,
                "quick": args.quick,
                "clients": args.clients,
                "seconds": seconds,
                "rounds": rounds,
                "merchants": args.merchants,
                "load_average": {"before": load_before, "after": load_after},
                "machine": machine,
                "scenarios": rows,
                "relative_to_distinct": shared_vs,
                "ledger_sql_per_posting": sql,
                "pgbench_script": PGBENCH_SCRIPT,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"results: {path.relative_to(BASE_DIR)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
