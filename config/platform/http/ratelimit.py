"""Per-merchant rate limits: a token bucket per (merchant, mode, budget) kept in Redis and updated atomically by a
Lua script, so concurrent requests can never overshoot (DRF's own throttles read, modify and write in three steps).

Two budgets per merchant and mode: `write` (POST, PUT, PATCH, DELETE) and `read` (everything else). A bucket holds
up to `burst` tokens and refills at `rate` tokens per second (settings RATE_LIMIT_{READ,WRITE}_{RATE,BURST});
each request takes one. The script reads the clock with Redis `TIME`, so API hosts' clocks do not matter.

Every authenticated `/v1` response carries the fields of draft-ietf-httpapi-ratelimit-headers-06:
`RateLimit-Limit` (burst), `RateLimit-Remaining` (whole tokens left), `RateLimit-Reset` (seconds until the bucket is
full again) and `RateLimit-Policy` (`<burst>;w=<seconds to refill from empty>`). Over the limit: 429 `rate_limited`
with `Retry-After` (seconds until one token is back, RFC 9110 §10.2.3).

If Redis is unavailable the limiter lets every request through and logs `ratelimit.redis_unavailable`: accepting
payments never depends on Redis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import redis
import structlog
from django.conf import settings
from django.http import HttpRequest
from rest_framework.throttling import BaseThrottle

from config.platform import redisconn

log = structlog.get_logger(__name__)

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# KEYS[1] bucket hash; ARGV[1] rate (tokens/s), ARGV[2] burst, ARGV[3] cost. Returns {allowed, tokens left}.
_BUCKET_SCRIPT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local allowed = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, tostring(tokens)}
"""


@dataclass(frozen=True, kw_only=True)
class Decision:
    """The outcome of taking one token: `allowed`, the bucket's `burst` and `rate` (tokens per second), and the
    `tokens` left afterwards (a float)."""

    allowed: bool
    burst: int
    rate: float
    tokens: float

    @property
    def remaining(self) -> int:
        """Whole tokens left."""
        return max(0, math.floor(self.tokens))

    @property
    def retry_after(self) -> int:
        """Seconds (≥ 1) until one token is available again."""
        return max(1, math.ceil((1 - self.tokens) / self.rate)) if self.tokens < 1 else 0

    @property
    def reset(self) -> int:
        """Seconds until the bucket is full again."""
        return max(0, math.ceil((self.burst - self.tokens) / self.rate))

    def headers(self) -> dict[str, str]:
        """The RateLimit-* response fields (and Retry-After when refused)."""
        fields = {
            "RateLimit-Limit": str(self.burst),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset),
            "RateLimit-Policy": f"{self.burst};w={math.ceil(self.burst / self.rate)}",
        }
        if not self.allowed:
            fields["Retry-After"] = str(self.retry_after)
        return fields


def budget_for(method: str) -> str:
    """`write` for POST, PUT, PATCH and DELETE, else `read`."""
    return "write" if method.upper() in WRITE_METHODS else "read"


def limits(budget: str) -> tuple[float, int]:
    """(rate in tokens per second, burst) of `budget` from settings."""
    prefix = f"RATE_LIMIT_{budget.upper()}"
    return float(getattr(settings, f"{prefix}_RATE")), int(getattr(settings, f"{prefix}_BURST"))


def take(*, merchant_id: str, mode: str, budget: str) -> Decision | None:
    """Take one token from the (merchant, mode, budget) bucket atomically. None when Redis is unavailable
    (the caller then lets the request through)."""
    rate, burst = limits(budget)
    key = f"clearhouse:ratelimit:{mode}:{merchant_id}:{budget}"
    try:
        allowed, tokens = redisconn.client().eval(_BUCKET_SCRIPT, 1, key, rate, burst, 1)
    except redis.RedisError as exc:
        log.warning("ratelimit.redis_unavailable", error=str(exc), merchant_id=merchant_id, budget=budget)
        return None
    return Decision(allowed=bool(allowed), burst=burst, rate=rate, tokens=float(tokens))


class MerchantRateThrottle(BaseThrottle):
    """DRF throttle applying the merchant's read or write budget (set as DEFAULT_THROTTLE_CLASSES).

    Stores the decision on the request for RateLimitHeadersMiddleware; `wait()` gives Retry-After.
    """

    def allow_request(self, request: Any, view: Any) -> bool:
        """Take a token from the caller's bucket; True when allowed (also when Redis is unavailable)."""
        principal = getattr(request, "user", None)
        merchant = getattr(principal, "merchant", None)
        if merchant is None or not getattr(settings, "RATE_LIMIT_ENABLED", True):
            return True
        decision = take(merchant_id=merchant.pk, mode=principal.mode, budget=budget_for(request.method))
        if decision is None:
            return True
        request._request.ratelimit = decision
        self.decision = decision
        return decision.allowed

    def wait(self) -> float | None:
        """Seconds until a token is back (Retry-After), when the last request was refused."""
        decision: Decision | None = getattr(self, "decision", None)
        return float(decision.retry_after) if decision is not None else None


class RateLimitHeadersMiddleware:
    """Adds the RateLimit-* fields of the request's rate-limit decision (if any) to the response."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> Any:
        response = self.get_response(request)
        decision: Decision | None = getattr(request, "ratelimit", None)
        if decision is not None:
            for name, value in decision.headers().items():
                response[name] = value
        return response
