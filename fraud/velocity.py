"""Velocity counters: how many payments shared a card fingerprint, IP or email within a sliding window, in Redis.

One sorted set per (dimension, value): members are payment ids, scores the payment's event time in milliseconds.
A Lua script (atomic on the Redis server) adds the payment with `ZADD NX` (so observing the same payment twice
adds nothing and keeps its first time), trims members older than the longest window, refreshes the key's TTL and
counts the members in each window ending at the event time. Counting at the event's own time, not the clock's,
makes a repeated observation return the same counts for the same members.

Values are hashed (SHA-256) before they become keys, so Redis holds no emails or IP addresses.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence

from django_redis import get_redis_connection

KEY_PREFIX = "fraud:velocity:"

_SCRIPT = """
redis.call('ZADD', KEYS[1], 'NX', ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
local counts = {}
for i = 5, #ARGV do
  counts[#counts + 1] = redis.call('ZCOUNT', KEYS[1], ARGV[i], ARGV[2])
end
return counts
"""


def _millis(at: dt.datetime) -> int:
    return int(at.timestamp() * 1000)


def key_for(dimension: str, value: str) -> str:
    """The Redis key of one (dimension, value) window: `fraud:velocity:<dimension>:<sha256 of value>`."""
    return f"{KEY_PREFIX}{dimension}:{hashlib.sha256(value.encode()).hexdigest()}"


def observe(*, dimension: str, value: str, member: str, at: dt.datetime, windows: Sequence[int]) -> list[int]:
    """Record `member` (a payment id) at time `at` for (dimension, value) and return, for each window in
    `windows` (seconds), how many members fall in [at − window, at], this one included.

    Idempotent per member. Raises redis.RedisError when Redis is unreachable (the outbox then retries).
    """
    if not windows:
        return []
    now_ms = _millis(at)
    longest_ms = max(windows) * 1000
    args: list[str | int] = [member, now_ms, f"({now_ms - longest_ms}", longest_ms]
    args += [now_ms - w * 1000 for w in windows]
    redis = get_redis_connection("default")
    counts = redis.eval(_SCRIPT, 1, key_for(dimension, value), *args)
    return [int(c) for c in counts]
