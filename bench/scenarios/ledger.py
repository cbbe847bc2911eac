"""Scenario 6 of the bench, after the stack has stopped: `python -m bench.ledger`, its JSON reported as is.

`scenario_ledger` runs the ledger's own benchmark (bench/ledger.py, when it exists) with the bench environment
and the run's pgbench, and reports the JSON object it prints (or the file its `results: <path>` line names).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from typing import Any

from bench.scenarios.shared import Bench, last_json
from bench.stack import BASE_DIR


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
    parsed = last_json(proc.stdout) or _results_file(proc.stdout)
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
