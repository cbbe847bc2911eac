"""The key rows (`payments_idempotencykey`), the guarantee that one key runs once: a key's scope and fingerprint,
the advisory lock on the scope, the one-transaction insert of a finished key, the claim and lease of the
step-by-step road and its recovery points, storing the answer, and the reaper of expired keys.

Nothing here knows Redis (config.platform.idempotency.cache); config.platform.idempotency.execution runs the
steps in order and fills the cache after each commit.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.http import HttpResponse
from django.utils import timezone
from psycopg.errors import LockNotAvailable
from rest_framework.request import Request

from config.platform.idempotency import answers
from config.platform.idempotency.models import IdempotencyKey, RecoveryPoint

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Scope:
    """A key as merchants see it: unique per (merchant, mode)."""

    merchant_id: str
    mode: str
    key: str

    def digest(self) -> bytes:
        """SHA-256 of the scope: names its advisory lock (here) and its Redis keys (cache)."""
        return hashlib.sha256(f"{self.merchant_id}\n{self.mode}\n{self.key}".encode()).digest()

    def filter(self) -> dict[str, str]:
        return {"merchant_id": self.merchant_id, "mode": self.mode, "key": self.key}


def request_fingerprint(*, method: str, path: str, body: Any) -> str:
    """SHA-256 hex of `METHOD path canonical-json(body)` (sorted keys, no whitespace, UTF-8)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(f"{method.upper()} {path} {canonical}".encode()).hexdigest()


class Busy(Exception):
    """Another request holds the key's advisory lock: it is running (or committing) with this key."""


class KeyExists(Exception):
    """The key row exists already (committed by an earlier request): take the general road."""


class LeaseLost(Exception):
    """Another request took this key over (our lease had expired); it does the work, we answer 409."""


def lock_scope(scope: Scope) -> bool:
    """Take the transaction-scoped advisory lock of the key's scope without waiting (raise Busy if it is held);
    return whether the key row exists, read in the same round trip (the caller still checks its INSERT, since
    a row committed just before the lock was taken may be missing from this statement's snapshot)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_try_advisory_xact_lock(%s), EXISTS (SELECT 1 FROM payments_idempotencykey"
            " WHERE merchant_id = %s AND mode = %s AND key = %s)",
            [int.from_bytes(scope.digest()[:8], "big", signed=True), scope.merchant_id, scope.mode, scope.key],
        )
        locked, exists = cursor.fetchone()
    if not locked:
        raise Busy
    return bool(exists)


def exists(scope: Scope) -> bool:
    """Whether the key row exists (committed)."""
    return IdempotencyKey.objects.filter(**scope.filter()).exists()


_INSERT_FINISHED = """
INSERT INTO payments_idempotencykey
    (merchant_id, mode, key, method, path, fingerprint, recovery_point, locked_until, lock_token,
     object_type, object_id, response_status, response_body, response_content_type, created_at, updated_at)
VALUES (%s, %s, %s, %s, %s, %s, 'finished', NULL, '', %s, %s, %s, %s, %s, now(), now())
ON CONFLICT (merchant_id, mode, key) DO NOTHING
RETURNING id
"""


def insert_finished(
    scope: Scope, *, request: Request, fingerprint: str, object_type: str, object_id: str, response: HttpResponse
) -> bool:
    """Store the key as `finished` with its response, unless it exists already (then False)."""
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT_FINISHED,
            [
                scope.merchant_id,
                scope.mode,
                scope.key,
                request.method,
                request.path[:255],
                fingerprint,
                object_type,
                object_id,
                response.status_code,
                response.content,
                response["Content-Type"],
            ],
        )
        return cursor.fetchone() is not None


def begin(scope: Scope, *, fingerprint: str, request: Request, token: str) -> IdempotencyKey | HttpResponse:
    """Step 1 (its own transaction): insert the key row or take over an abandoned one, leased to `token`.

    Returns the key row, which is ours (at `started` or `object_created`) unless it is `finished`: then the
    caller replays its stored response. Or returns 422 `idempotency_key_reused` (another fingerprint) or 409
    `idempotency_key_in_use` (the lease of a running request holds; or the row or scope is locked by the
    request that owns it, which is committing its work: 409 at once, `NOWAIT`).
    """
    try:
        return _begin_locked(scope, fingerprint=fingerprint, request=request, token=token)
    except Busy:
        return answers.in_use()
    except OperationalError as exc:
        if isinstance(exc.__cause__, LockNotAvailable):
            return answers.in_use()
        raise


def _begin_locked(scope: Scope, *, fingerprint: str, request: Request, token: str) -> IdempotencyKey | HttpResponse:
    now = timezone.now()
    lease = now + timedelta(seconds=float(settings.IDEMPOTENCY_LOCK_TTL))
    with transaction.atomic():
        lock_scope(scope)
        record, created = IdempotencyKey.objects.get_or_create(
            **scope.filter(),
            defaults={
                "method": request.method,
                "path": request.path[:255],
                "fingerprint": fingerprint,
                "recovery_point": RecoveryPoint.STARTED,
                "locked_until": lease,
                "lock_token": token,
            },
        )
        if created:
            return record
        record = IdempotencyKey.objects.select_for_update(nowait=True).get(pk=record.pk)
        if record.fingerprint != fingerprint:
            return answers.reused()
        if record.recovery_point == RecoveryPoint.FINISHED:
            return record
        if record.locked_until is not None and record.locked_until > now:
            return answers.in_use()
        log.warning("idempotency.recovering", recovery_point=record.recovery_point, key_id=record.pk)
        record.locked_until = lease
        record.lock_token = token
        record.save(update_fields=["locked_until", "lock_token", "updated_at"])
        return record


def stored_answer(record: IdempotencyKey) -> HttpResponse:
    """The replay of a `finished` key's stored response."""
    return answers.replay(
        status=record.response_status or 500,
        body=bytes(record.response_body or b""),
        content_type=record.response_content_type,
    )


def lock_owned(record: IdempotencyKey, token: str) -> IdempotencyKey:
    """Inside step 2's transaction: lock the key row (`SELECT … FOR UPDATE`) and return it, while it is still
    leased to `token` and at `started`; else raise LeaseLost (another request took it over)."""
    locked = IdempotencyKey.objects.select_for_update().get(pk=record.pk)
    if locked.lock_token != token or locked.recovery_point != RecoveryPoint.STARTED:
        raise LeaseLost
    return locked


def mark_object_created(locked: IdempotencyKey, *, object_type: str, object_id: str) -> None:
    """Inside step 2's transaction: move the key row locked by `lock_owned` to `object_created`."""
    locked.recovery_point = RecoveryPoint.OBJECT_CREATED
    locked.object_type = object_type
    locked.object_id = object_id
    locked.save(update_fields=["recovery_point", "object_type", "object_id", "updated_at"])


def forget(record: IdempotencyKey, token: str) -> None:
    """Delete our key row while it is still at `started` (invalid input: nothing is stored, the key is free)."""
    IdempotencyKey.objects.filter(pk=record.pk, lock_token=token, recovery_point=RecoveryPoint.STARTED).delete()


def release(record: IdempotencyKey, token: str) -> None:
    """Drop our lease after an unexpected error, so a retry may run at once (the work was rolled back)."""
    try:
        IdempotencyKey.objects.filter(pk=record.pk, lock_token=token).update(locked_until=None)
    except Exception as exc:  # the database may be what failed; the lease then simply expires
        log.warning("idempotency.release_failed", error=str(exc))


def store(record: IdempotencyKey, *, token: str, response: HttpResponse) -> bool:
    """Step 4 (in autocommit): store the exact response as `finished` and drop the lease, only while the key is
    still ours. Returns whether it was stored."""
    updated = IdempotencyKey.objects.filter(pk=record.pk, lock_token=token).update(
        recovery_point=RecoveryPoint.FINISHED,
        response_status=response.status_code,
        response_body=response.content,
        response_content_type=response["Content-Type"],
        locked_until=None,
        updated_at=timezone.now(),
    )
    if not updated:
        log.warning("idempotency.lease_lost_before_finish", key_id=record.pk)
    return bool(updated)


def idempotency_keys_reap(*, now: datetime | None = None, batch_size: int = 1000) -> int:
    """Delete idempotency keys older than IDEMPOTENCY_KEY_TTL seconds (24 h by default) at `now` (default: the
    current time), in batches of `batch_size`, each batch its own transaction. Keys still leased to a running
    request are kept. Called by Celery beat (`config.platform.idempotency.tasks`). Returns rows deleted.

    A reaped key is forgotten: a later request with it runs as new (the draft allows this after expiry).
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL)
    due = IdempotencyKey.objects.filter(created_at__lt=cutoff).exclude(locked_until__gt=now)
    deleted = 0
    while True:
        ids = list(due.values_list("pk", flat=True)[:batch_size])
        if not ids:
            return deleted
        with transaction.atomic():
            count, _ = due.filter(pk__in=ids).delete()
        deleted += count
