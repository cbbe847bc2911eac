"""The Redis fast path of idempotency keys, never the guarantee: a replay cache of finished answers (kept
IDEMPOTENCY_KEY_TTL seconds) and a `SET NX` in-flight lock (IDEMPOTENCY_LOCK_TTL) that turns concurrent
duplicates into 409 before they touch PostgreSQL.

Every Redis error is logged (`idempotency.redis_unavailable`) and read as "no answer": a miss, or "the database
decides" for the lock. Answers are cached only after the commit that stored them.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import redis
import structlog
from django.conf import settings
from django.http import HttpResponse

from config.platform import redisconn
from config.platform.idempotency import answers
from config.platform.idempotency.storage import Scope

log = structlog.get_logger(__name__)

_UNLOCK = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


def _redis_key(scope: Scope, suffix: str) -> str:
    return f"clearhouse:idem:{scope.digest().hex()}:{suffix}"


def cached(scope: Scope) -> tuple[str, HttpResponse] | None:
    """The cached answer of the key: the fingerprint of its request and its replay; or None (a miss)."""
    try:
        raw = redisconn.client().get(_redis_key(scope, "response"))
    except redis.RedisError as exc:
        log.warning("idempotency.redis_unavailable", op="get", error=str(exc))
        return None
    if not raw:
        return None
    value: dict[str, Any] = json.loads(raw)
    replay = answers.replay(
        status=value["status"], body=base64.b64decode(value["body"]), content_type=value["content_type"]
    )
    return value["fingerprint"], replay


def remember(scope: Scope, *, fingerprint: str, response: HttpResponse) -> None:
    """Cache the committed answer `response` of the key (its status, content type and exact bytes)."""
    value = json.dumps(
        {
            "fingerprint": fingerprint,
            "status": response.status_code,
            "content_type": response["Content-Type"],
            "body": base64.b64encode(response.content).decode(),
        }
    )
    try:
        redisconn.client().set(_redis_key(scope, "response"), value, ex=int(settings.IDEMPOTENCY_KEY_TTL))
    except redis.RedisError as exc:
        log.warning("idempotency.redis_unavailable", op="set", error=str(exc))


def lock(scope: Scope, token: str) -> bool | None:
    """True: locked by us. False: another request holds it. None: Redis unavailable (the database decides)."""
    try:
        ttl_ms = int(float(settings.IDEMPOTENCY_LOCK_TTL) * 1000)
        return bool(redisconn.client().set(_redis_key(scope, "lock"), token, nx=True, px=ttl_ms))
    except redis.RedisError as exc:
        log.warning("idempotency.redis_unavailable", op="lock", error=str(exc))
        return None


def unlock(scope: Scope, token: str) -> None:
    """Drop the in-flight lock if it is still ours (`token`)."""
    try:
        redisconn.client().eval(_UNLOCK, 1, _redis_key(scope, "lock"), token)
    except redis.RedisError as exc:
        log.warning("idempotency.redis_unavailable", op="unlock", error=str(exc))
