"""Profile the accept path and the worker under load with py-spy: `python -m bench.profile [--seconds 15]`.

    make bench-profile            (the same, through make)

Starts the bench stack (bench.stack), then:

- `api`: a closed loop of `POST /v1/payments` (bench.loadgen) while `py-spy record --subprocesses` samples every
  gunicorn worker;
- `worker`: a burst of payments through the API with the Celery worker consuming, while py-spy samples the
  Celery pool processes.

Only threads holding the GIL are sampled (`--gil`), so the profile says where Python CPU time goes, not where
requests wait on the database or the network (those release the GIL). A 3-second warm-up runs first.
Writes `bench/results/profile-<UTC time>-<target>.txt` (collapsed stacks, one line per stack with its sample
count, for flamegraph tools and speedscope) and prints a summary: CPU share by package (of the innermost
non-stdlib frame) and the functions with the most samples, inclusive and self.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from bench.stack import BASE_DIR, BENCH_QUEUE, VENV_BIN, Shape, Stack, prepare

RESULTS_DIR = BASE_DIR / "bench" / "results"
_FRAME_RE = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def frame_package(frame: str) -> str:
    """The package a py-spy frame (`func (path/to/file.py:12)`) belongs to: a site-packages top-level name,
    `clearhouse:<app>` for this repository, `python` for the standard library, else `other`."""
    match = _FRAME_RE.match(frame.strip())
    path = match.group("file") if match else frame
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    repo = str(BASE_DIR) + "/"
    if not path.startswith("/"):
        return "python"  # <frozen …>, <string>
    if path.startswith(repo):
        rel = path.removeprefix(repo)
        return "clearhouse:" + rel.split("/", 1)[0].removesuffix(".py")
    if "/lib/python3" in path:
        return "python"
    return "other"


def frame_name(frame: str) -> str:
    """`func (file.py)` of a py-spy frame, without the line number and with a short path."""
    match = _FRAME_RE.match(frame.strip())
    if not match:
        return frame.strip()
    path = match.group("file")
    for marker in ("site-packages/", str(BASE_DIR) + "/", "/lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{match.group('func')} ({path})"


def summarize(collapsed: str, *, top: int = 25) -> dict[str, object]:
    """Summarize py-spy's raw (collapsed) output: total samples, share by package of the leaf frame, and the
    `top` functions by inclusive and by self samples (each as [name, share of samples])."""
    total = 0
    by_package: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if f and not f.startswith("process ")]
        if not frames:
            continue
        total += count
        leaf = frames[-1]
        # The innermost frame that is not the standard library says whose work it is.
        owner = next((f for f in reversed(frames) if frame_package(f) not in ("python", "other")), leaf)
        by_package[frame_package(owner)] += count
        self_time[frame_name(leaf)] += count
        for name in {frame_name(f) for f in frames}:
            inclusive[name] += count

    def share(counter: Counter[str], *, below: float = 1.0) -> list[list[object]]:
        if not total:
            return []
        ranked = [[name, round(n / total, 3)] for name, n in counter.most_common() if n / total <= below]
        return ranked[:top]

    return {
        "samples": total,
        "by_package": share(by_package),
        # Frames on (nearly) every stack (the server loop, the WSGI handler) say nothing: left out.
        "inclusive": share(inclusive, below=0.9),
        "self": share(self_time),
    }


def _record(pid: int, seconds: float, output: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            str(VENV_BIN / "py-spy"),
            "record",
            "--pid",
            str(pid),
            "--subprocesses",
            "--nonblocking",
            "--gil",
            "--full-filenames",
            "--rate",
            "250",
            "--duration",
            str(int(seconds)),
            "--format",
            "raw",
            "--output",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _loadgen(env: dict[str, str], spec: dict[str, object]) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.loadgen"], input=json.dumps(spec), capture_output=True, text=True, env=env
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return json.loads(proc.stdout)


def main(argv: list[str] | None = None) -> int:
    """Profile `api` and/or `worker` (see module docstring). Returns 0 when the profiles were written."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--targets", default="api,worker")
    args = parser.parse_args(argv)
    targets = [t for t in args.targets.split(",") if t]
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    workdir = RESULTS_DIR / f"profile-run-{stamp}"
    prepared = prepare(workdir=workdir)
    os.environ.update(prepared.env)
    os.environ["LOG_LEVEL"] = "WARNING"
    import django

    django.setup()
    from config.platform.merchants.services import merchant_create

    cores = len(os.sched_getaffinity(0))
    stack = Stack(prepared=prepared, shape=Shape.from_env(cores))
    summaries = {}
    try:
        stack.start()
        _, api_key = merchant_create(name="Bench profile")
        url = f"http://127.0.0.1:{prepared.ports['api']}/v1/payments"
        warm = {"url": url, "api_key": api_key, "mode": "closed", "concurrency": args.concurrency, "duration": 3}
        _loadgen(prepared.env, {**warm, "key_prefix": f"profile-{stamp}-warmup"})  # lazy imports, regexes, pools
        for target in targets:
            out = RESULTS_DIR / f"profile-{stamp}-{target}.txt"
            if target == "api":
                stack.set_consuming(BENCH_QUEUE, False)
                spy = _record(stack.pids()["api"], args.seconds, out)
                spec = {
                    "url": url,
                    "api_key": api_key,
                    "mode": "closed",
                    "concurrency": args.concurrency,
                    "duration": args.seconds + 2,
                    "key_prefix": f"profile-{stamp}-api",
                }
                result = _loadgen(prepared.env, spec)
                stack.set_consuming(BENCH_QUEUE, True)
            elif target == "worker":
                spy = _record(stack.pids()["worker"], args.seconds, out)
                spec = {
                    "url": url,
                    "api_key": api_key,
                    "mode": "closed",
                    "concurrency": args.concurrency,
                    "duration": args.seconds,
                    "key_prefix": f"profile-{stamp}-worker",
                }
                result = _loadgen(prepared.env, spec)
            else:
                raise SystemExit(f"unknown target {target!r}")
            _, err = spy.communicate(timeout=args.seconds + 60)
            if spy.returncode != 0 or not out.exists():
                print(f"py-spy failed for {target}: {err.decode()[-1000:]}", file=sys.stderr)
                continue
            summary = summarize(out.read_text())
            summary["throughput_rps"] = result.get("throughput_rps")
            summaries[target] = summary
            print(f"\n== {target}: {summary['samples']} samples, collapsed stacks in {out.relative_to(BASE_DIR)}")
            print("CPU by package (innermost non-stdlib frame):")
            for name, part in summary["by_package"][:15]:
                print(f"  {part:6.1%}  {name}")
            print("Most samples, inclusive:")
            for name, part in summary["inclusive"][:25]:
                print(f"  {part:6.1%}  {name}")
            print("Most samples, self:")
            for name, part in summary["self"][:15]:
                print(f"  {part:6.1%}  {name}")
    finally:
        stack.stop()
    (RESULTS_DIR / f"profile-{stamp}-summary.json").write_text(json.dumps(summaries, indent=2) + "\n")
    return 0 if summaries else 1


if __name__ == "__main__":
    sys.exit(main())
