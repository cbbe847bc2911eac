"""`Prefer: wait=N` (RFC 7240 §4.3): hold a response until the worker settles an object, or N seconds pass.

Wake-ups travel over one Redis pub/sub channel per object (`clearhouse:settled:<id>`): payments.events publishes
the object's id after the transaction that emitted an event about it commits. A waiter subscribes first, then
reads the object, then blocks on the channel, re-reading the object on each message; so a change committed
between the read and the block is never missed. While blocked it holds no database connection (closed before
each block, reopened for each re-read): waiting costs one Redis connection, not a PostgreSQL one.

If Redis is unavailable nobody waits: the caller answers at once with the object as it is (202 if in flight).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import redis
import structlog
from django.db import connection, transaction

from config.platform import redisconn

log = structlog.get_logger(__name__)

T = TypeVar("T")
CHANNEL_PREFIX = "clearhouse:settled:"


def channel(object_id: str) -> str:
    """The pub/sub channel announcing changes of the object `object_id`."""
    return f"{CHANNEL_PREFIX}{object_id}"


def notify(object_id: str) -> bool:
    """Publish that `object_id` changed. Never raises; returns False when Redis could not be reached."""
    try:
        redisconn.client().publish(channel(object_id), b"1")
        return True
    except redis.RedisError as exc:
        log.warning("waiting.notify_failed", object_id=object_id, error=str(exc))
        return False


def notify_after_commit(object_id: str) -> None:
    """Publish that `object_id` changed once the current transaction commits (nothing if it rolls back)."""
    transaction.on_commit(lambda: notify(object_id))


def _release_db_connection() -> None:
    if not connection.in_atomic_block:
        connection.close()


def wait_for(object_id: str, *, load: Callable[[], T], settled: Callable[[T], bool], timeout: float) -> T:
    """Return `load()` once `settled(load())` is true or `timeout` seconds have passed, whichever comes first.

    `load` re-reads the object from the database; it is called once up front and again after every wake-up on
    the object's channel. Blocks on Redis only, with the database connection closed. Redis errors end the wait
    early (the last loaded object is returned).
    """
    deadline = time.monotonic() + max(timeout, 0.0)
    try:
        pubsub = redisconn.pubsub_client(timeout=timeout).pubsub()
        pubsub.subscribe(channel(object_id))
        confirmed = pubsub.get_message(timeout=min(1.0, max(timeout, 0.01)))
        if confirmed is None or confirmed.get("type") != "subscribe":
            raise redis.RedisError("no subscription confirmation")
    except redis.RedisError as exc:
        log.warning("waiting.redis_unavailable", object_id=object_id, error=str(exc))
        return load()
    try:
        obj = load()
        while not settled(obj):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            _release_db_connection()
            try:
                message = pubsub.get_message(ignore_subscribe_messages=True, timeout=remaining)
            except redis.RedisError as exc:
                log.warning("waiting.redis_lost", object_id=object_id, error=str(exc))
                return load()
            if message is not None:
                obj = load()
        return obj
    finally:
        try:
            pubsub.close()
        except redis.RedisError:
            log.debug("waiting.close_failed", object_id=object_id)
