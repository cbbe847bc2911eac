"""The generation counter that invalidates every process's cache of API keys (config.platform.merchants.authentication).

`bump()` runs whenever an ApiKey or a Merchant row is saved or deleted (signals in payments.apps): at once, and
again after the transaction commits, so a request that looked the key up between the two cannot keep the old
row. A change made around the ORM (raw SQL, `QuerySet.update`) should call `bump()` itself; otherwise the
cache's TTL (API_KEY_CACHE_TTL seconds) bounds how long the old row is used.
"""

from __future__ import annotations

import secrets

import redis
import structlog
from django.db import transaction

from config.platform import redisconn

log = structlog.get_logger(__name__)

KEY = "clearhouse:apikeys:generation"


def generation() -> int | None:
    """The current generation, or None when Redis cannot be read (then: do not cache).

    A missing counter (new or flushed Redis) starts at a random 62-bit value, so entries cached before a flush
    never match the generations that follow it.
    """
    try:
        client = redisconn.client()
        value = client.get(KEY)
        if value is None:
            client.set(KEY, secrets.randbits(62), nx=True)
            value = client.get(KEY)
    except redis.RedisError as exc:
        log.warning("apikeys.redis_unavailable", op="get", error=str(exc))
        return None
    return int(value) if value is not None else None


#: INCR, except that a missing counter first starts at a random value (like `generation()`), so that a counter lost
#: twice can never count up again to a generation some process still has entries for.
_INCR = """
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SET', KEYS[1], ARGV[1]) end
return redis.call('INCR', KEYS[1])
"""


def _incr() -> None:
    try:
        redisconn.client().eval(_INCR, 1, KEY, secrets.randbits(62))
    except redis.RedisError as exc:  # every process then stops caching (generation() is None) until Redis is back
        log.warning("apikeys.redis_unavailable", op="incr", error=str(exc))


def bump() -> None:
    """Invalidate every cached API key now and again once the current transaction commits."""
    _incr()
    transaction.on_commit(_incr, robust=True)
