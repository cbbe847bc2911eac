"""Pure helpers of the benchmark: percentiles, summaries, time buckets, pacing, rate search and trend slopes.

Nothing here touches the network or the clock; tests/config/test_bench_helpers.py covers it. Latencies are in seconds
unless a name ends in `_ms`; rates are in requests (or payments, or events) per second.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The `q`-th percentile (0 ≤ q ≤ 100) of ascending `sorted_values`, by the nearest-rank method.

    Nearest rank never interpolates: P99 of 1,000 values is the 990th smallest, an observed value. Returns NaN
    for an empty sequence. Raises ValueError for q outside [0, 100].
    """
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within [0, 100], got {q}")
    n = len(sorted_values)
    if n == 0:
        return math.nan
    rank = max(1, math.ceil(q / 100 * n))
    return float(sorted_values[rank - 1])


def latency_summary_ms(latencies_s: Iterable[float]) -> dict[str, float | int]:
    """{count, mean, p50, p90, p99, p999, max} of latencies given in seconds, reported in milliseconds."""
    values = sorted(latencies_s)
    if not values:
        return {"count": 0, **dict.fromkeys(("mean", "p50", "p90", "p99", "p999", "max"), math.nan)}
    return {
        "count": len(values),
        "mean": round(sum(values) / len(values) * 1000, 3),
        "p50": round(percentile(values, 50) * 1000, 3),
        "p90": round(percentile(values, 90) * 1000, 3),
        "p99": round(percentile(values, 99) * 1000, 3),
        "p999": round(percentile(values, 99.9) * 1000, 3),
        "max": round(values[-1] * 1000, 3),
    }


def intended_start(t0: float, index: int, rate: float) -> float:
    """When request `index` (0-based) of a constant-rate schedule starting at `t0` should start (seconds).

    The open loop measures each request's latency from this time, not from when it was actually sent, so a
    stalled server (or generator) cannot hide the requests it delayed (no coordinated omission).
    """
    if rate <= 0:
        raise ValueError(f"rate must be positive, got {rate}")
    return t0 + index / rate


@dataclass(frozen=True, kw_only=True)
class Bucket:
    """One second of a timeline: start offset (s), requests started, errors, P50/P99 latency (ms), max in flight."""

    t: float
    count: int
    errors: int
    p50_ms: float
    p99_ms: float
    inflight_max: int


def timeline(
    starts: Sequence[float],
    latencies: Sequence[float],
    oks: Sequence[bool],
    inflight: Sequence[int],
    *,
    width: float = 1.0,
) -> list[Bucket]:
    """Group requests into `width`-second buckets by start offset (seconds since the run began).

    `latencies` (seconds), `oks` and `inflight` (requests outstanding when each was started) are parallel to
    `starts`. Buckets with no request are included (count 0, NaN latencies) so the series has no gaps.
    """
    if not starts:
        return []
    last = int(max(starts) // width)
    grouped: list[list[int]] = [[] for _ in range(last + 1)]
    for i, s in enumerate(starts):
        grouped[max(0, int(s // width))].append(i)
    out = []
    for b, idx in enumerate(grouped):
        lat = sorted(latencies[i] for i in idx if oks[i])
        out.append(
            Bucket(
                t=b * width,
                count=len(idx),
                errors=sum(1 for i in idx if not oks[i]),
                p50_ms=round(percentile(lat, 50) * 1000, 3) if lat else math.nan,
                p99_ms=round(percentile(lat, 99) * 1000, 3) if lat else math.nan,
                inflight_max=max((inflight[i] for i in idx), default=0),
            )
        )
    return out


def slope(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope dy/dx of (x, y) points; 0.0 with fewer than two distinct x values.

    The pipeline uses it on (seconds, payments in flight) to tell a flat backlog from a growing one.
    """
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in points) / sxx


@dataclass(frozen=True, kw_only=True)
class RateSearch:
    """State of the search for the sustainable rate: the highest rate that passed and the lowest that failed."""

    passed: float | None = None
    failed: float | None = None

    def record(self, rate: float, ok: bool) -> RateSearch:
        """The state after a run at `rate` (requests/s) passed (`ok`) or failed."""
        if ok:
            return RateSearch(passed=max(rate, self.passed or 0.0), failed=self.failed)
        return RateSearch(passed=self.passed, failed=min(rate, self.failed) if self.failed else rate)

    def next_rate(self, *, up: float = 1.25, down: float = 0.6, resolution: float = 0.05) -> float | None:
        """The next rate to try (requests/s, whole numbers), or None when the gap is within `resolution`.

        Without a failure yet it climbs by `up`×; without a pass yet it falls by `down`×; with both it bisects.
        """
        if self.passed is None and self.failed is None:
            raise ValueError("record a first run before asking for the next rate")
        if self.failed is None:
            return float(math.floor(self.passed * up))  # type: ignore[operator]
        if self.passed is None:
            nxt = math.floor(self.failed * down)
            return float(nxt) if nxt >= 1 else None
        if self.failed - self.passed <= resolution * self.failed:
            return None
        nxt = float(math.floor((self.passed + self.failed) / 2))
        return nxt if self.passed < nxt < self.failed else None


def sustainable(p99_ms: float, errors: int, *, p99_limit_ms: float = 50.0) -> bool:
    """True when a fixed-rate run is sustainable: P99 within `p99_limit_ms` milliseconds and no errors."""
    return errors == 0 and not math.isnan(p99_ms) and p99_ms <= p99_limit_ms


def ratio(value: float | None, ceiling: float | None) -> float | None:
    """value ÷ ceiling rounded to 3 places, or None when either is missing or the ceiling is not positive."""
    if value is None or ceiling is None or ceiling <= 0 or math.isnan(value) or math.isnan(ceiling):
        return None
    return round(value / ceiling, 3)
