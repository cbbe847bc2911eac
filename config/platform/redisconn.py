"""The Redis client for fast paths (idempotency replays and locks, rate limits, `Prefer: wait` wake-ups).

Redis is never the guarantee of anything: every caller treats `redis.RedisError` (down, flushed, slow) as
"no answer" and falls back to PostgreSQL or lets the request through. Timeouts are short (REDIS_SOCKET_TIMEOUT
seconds) so a dead Redis costs milliseconds, not a hung request.
"""

from __future__ import annotations

import threading

import redis
from django.conf import settings

_clients: dict[str, redis.Redis] = {}
_lock = threading.Lock()


def client() -> redis.Redis:
    """A shared, thread-safe client for settings.REDIS_URL (one connection pool per URL)."""
    url = settings.REDIS_URL
    found = _clients.get(url)
    if found is not None:
        return found
    with _lock:
        if url not in _clients:
            timeout = float(getattr(settings, "REDIS_SOCKET_TIMEOUT", 0.5))
            _clients[url] = redis.Redis.from_url(
                url, socket_connect_timeout=timeout, socket_timeout=timeout, health_check_interval=30
            )
        return _clients[url]


def pubsub_client(*, timeout: float) -> redis.Redis:
    """A client for one subscriber whose reads may block up to `timeout` seconds (no shared pool)."""
    connect = float(getattr(settings, "REDIS_SOCKET_TIMEOUT", 0.5))
    return redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=connect, socket_timeout=timeout + 1)
