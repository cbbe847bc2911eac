"""The HTTP load generator of the benchmark: `POST /v1/payments` with unique idempotency keys and realistic bodies.

Run as a child process, so the CPU it takes is its own and is reported with every scenario:

    .venv/bin/python -m bench.loadgen < spec.json > result.json

Two shapes (the `mode` of the spec, see `Spec`):

- `closed`: `concurrency` clients each send a request, wait for the answer and send the next. Throughput is what
  the server gives; latency is per request. Used for the accept ceiling search, replays and the pipeline burst.
- `open`: requests start at a constant `rate` (requests/s) whatever the server does, over at most `concurrency`
  keep-alive connections (wrk2-style). Latency is measured from each request's *intended* start time
  (bench.stats.intended_start), so when the server stalls, the requests it delayed count with their full wait:
  no coordinated omission. If the generator itself falls behind, that lag is reported (`schedule_lag_ms`).

Requests: key `<key_prefix>-<i>`, body `payment_body(i)` (deterministic in i, so a replay of key i sends the same
body). With `replay_keys` > 0 the keys cycle over `[key_start, key_start + replay_keys)` and only answers with
`Idempotent-Replayed: true` count as successes. Uses aiohttp, on uvloop when it is installed.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import resource
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from bench import stats

#: Currencies of the generated payments (ISO 4217, all with 2 minor units).
CURRENCIES = ("EUR", "USD", "GBP", "EUR", "USD", "SEK", "EUR", "CHF")
#: Sandbox tokens that the sandbox acquirer approves, so every generated payment can be captured.
APPROVED_TOKENS = ("tok_visa", "tok_visa", "tok_mastercard")


@dataclass(frozen=True, kw_only=True)
class Spec:
    """What to send. Durations in seconds, `rate` in requests/s.

        `url`: the full `POST /v1/payments` URL; `api_key`: a test secret key. `warmup` seconds run first and are
        not measured. `max_requests` > 0 stops a closed loop after that many requests (the pipeline burst), or
    when `duration` runs out, whichever comes first.
        `expect_status`: the status of a successful first request (202). `drain_timeout`: how long an open loop
        waits for outstanding answers after its last start; what is still outstanding then counts as errors.
    """

    url: str
    api_key: str
    mode: str = "closed"
    duration: float = 10.0
    warmup: float = 0.0
    concurrency: int = 16
    rate: float = 0.0
    key_prefix: str = "bench"
    key_start: int = 0
    replay_keys: int = 0
    max_requests: int = 0
    expect_status: int = 202
    request_timeout: float = 30.0
    drain_timeout: float = 30.0


def payment_body(i: int) -> dict[str, Any]:
    """The body of payment number `i`: a realistic, valid payment whose every field is a function of `i`.

    `amount` is in minor units (1.00 to 2,500.99 of the currency); the token is one the sandbox approves.
    """
    return {
        "amount": 100 + (i * 7919) % 250_000,
        "currency": CURRENCIES[i % len(CURRENCIES)],
        "payment_method": APPROVED_TOKENS[i % len(APPROVED_TOKENS)],
        "capture_method": "automatic",
        "description": f"Order #{100000 + i}",
        "metadata": {"order_id": str(100000 + i), "channel": "web" if i % 4 else "app"},
        "customer": {"email": f"customer{i % 5000}@example.com", "ip": f"203.0.113.{i % 250 + 1}"},
    }


def idempotency_key(prefix: str, i: int) -> str:
    """The idempotency key of request `i` of a run with `prefix`."""
    return f"{prefix}-{i}"


class _Recorder:
    """Per-request records, in parallel lists: start offset (s), latency (s), ok, requests in flight at start."""

    def __init__(self) -> None:
        self.starts: list[float] = []
        self.latencies: list[float] = []
        self.oks: list[bool] = []
        self.inflight: list[int] = []
        self.errors: Counter[str] = Counter()
        self.lags: list[float] = []
        self.outstanding = 0


async def _run(spec: Spec) -> dict[str, Any]:
    import aiohttp

    loop = asyncio.get_running_loop()
    rec = _Recorder()
    headers_base = {"Authorization": f"Bearer {spec.api_key}", "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=spec.concurrency, keepalive_timeout=60, enable_cleanup_closed=True)
    timeout = aiohttp.ClientTimeout(total=spec.request_timeout)
    replay = spec.replay_keys > 0

    async with aiohttp.ClientSession(connector=connector, timeout=timeout, skip_auto_headers=("User-Agent",)) as s:
        t_run0 = loop.time()
        wall0 = time.time()

        async def one(n: int, started: float) -> None:
            i = spec.key_start + (n % spec.replay_keys if replay else n)
            body = json.dumps(payment_body(i), separators=(",", ":")).encode()
            headers = {**headers_base, "Idempotency-Key": idempotency_key(spec.key_prefix, i)}
            rec.outstanding += 1
            inflight = rec.outstanding
            kind = None
            try:
                async with s.post(spec.url, data=body, headers=headers) as response:
                    await response.read()
                    replayed = response.headers.get("Idempotent-Replayed") == "true"
                    if response.status != spec.expect_status:
                        kind = f"http_{response.status}"
                    elif replayed != replay:
                        kind = "unexpected_replay" if replayed else "not_replayed"
            except TimeoutError:
                kind = "timeout"
            except aiohttp.ClientError as exc:
                kind = type(exc).__name__
            finally:
                rec.outstanding -= 1
            done = loop.time()
            rec.starts.append(started - t_run0)
            rec.latencies.append(done - started)
            rec.oks.append(kind is None)
            rec.inflight.append(inflight)
            if kind is not None:
                rec.errors[kind] += 1

        cpu0 = time.process_time()
        if spec.mode == "closed":
            end = t_run0 + spec.warmup + spec.duration
            counter = itertools.count()

            async def client() -> None:
                while loop.time() < end:
                    n = next(counter)
                    if spec.max_requests and n >= spec.max_requests:
                        return
                    await one(n, loop.time())

            await asyncio.gather(*(client() for _ in range(spec.concurrency)))
            unfinished = 0
        elif spec.mode == "open":
            total = int(spec.rate * (spec.warmup + spec.duration))
            tasks: set[asyncio.Task[None]] = set()
            for n in range(total):
                intended = stats.intended_start(t_run0, n, spec.rate)
                delay = intended - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                rec.lags.append(max(0.0, loop.time() - intended))
                task = loop.create_task(one(n, intended))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            unfinished = 0
            if tasks:
                _, pending = await asyncio.wait(set(tasks), timeout=spec.drain_timeout)
                unfinished = len(pending)
                for task in pending:
                    task.cancel()
        else:
            raise ValueError(f"unknown mode {spec.mode!r}")
        wall_s = loop.time() - t_run0
        cpu_s = time.process_time() - cpu0
        wall_end = time.time()

    return _result(spec, rec, wall0=wall0, wall_end=wall_end, wall_s=wall_s, cpu_s=cpu_s, unfinished=unfinished)


def _result(
    spec: Spec, rec: _Recorder, *, wall0: float, wall_end: float, wall_s: float, cpu_s: float, unfinished: int
) -> dict[str, Any]:
    measured = [i for i, s in enumerate(rec.starts) if s >= spec.warmup]
    ok_lat = [rec.latencies[i] for i in measured if rec.oks[i]]
    errors = sum(1 for i in measured if not rec.oks[i]) + unfinished
    if spec.mode == "closed" and not spec.max_requests:
        window = spec.duration
    elif spec.mode == "open":
        window = spec.duration
    else:
        window = max((rec.starts[i] + rec.latencies[i] for i in measured), default=0.0) - spec.warmup
    total = len(measured) + unfinished
    usage = resource.getrusage(resource.RUSAGE_SELF)
    lags = sorted(rec.lags[int(spec.rate * spec.warmup) :]) if rec.lags else []
    return {
        "spec": {k: v for k, v in asdict(spec).items() if k != "api_key"},
        "sent": len(rec.starts),
        "requests": total,
        "ok": len(ok_lat),
        "errors": errors,
        "error_rate": round(errors / total, 6) if total else 0.0,
        "error_kinds": dict(rec.errors) | ({"unfinished": unfinished} if unfinished else {}),
        "window_s": round(window, 3),
        "throughput_rps": round(len(ok_lat) / window, 1) if window > 0 else 0.0,
        "latency_ms": stats.latency_summary_ms(ok_lat),
        "schedule_lag_ms": stats.latency_summary_ms(lags) if lags else None,
        "timeline": [asdict(b) for b in stats.timeline(rec.starts, rec.latencies, rec.oks, rec.inflight)],
        "wall_start_unix": wall0,
        "wall_end_unix": wall_end,
        "generator": {
            "cpu_s": round(cpu_s, 3),
            "wall_s": round(wall_s, 3),
            "cpu_pct_of_one_core": round(100 * cpu_s / wall_s, 1) if wall_s > 0 else 0.0,
            "process_cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
            "event_loop": "uvloop" if _uvloop() is not None else "asyncio",
        },
    }


def _uvloop() -> Any:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop


def run(spec: Spec) -> dict[str, Any]:
    """Run `spec` to completion on a fresh event loop and return its result (see module docstring)."""
    uvloop = _uvloop()
    if uvloop is not None:
        return uvloop.run(_run(spec))
    return asyncio.run(_run(spec))


def main() -> int:
    """Read a JSON `Spec` from stdin, run it, print the JSON result on stdout."""
    spec = Spec(**json.load(sys.stdin))
    json.dump(run(spec), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
