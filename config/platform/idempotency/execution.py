"""Idempotency keys on every mutating endpoint: draft-ietf-httpapi-idempotency-key-header-07 for the status codes,
Stripe's rules for replays, Stripe's (Brandur Leach's) recovery points for crashes.

Answers:
- `Idempotency-Key` missing → 400 `idempotency_key_missing`; empty, blank or over 255 characters → 400
  `idempotency_key_invalid`. A body that fails validation → 400 and nothing is stored (the key stays free).
- Same key, same fingerprint (SHA-256 of method, path and canonical JSON body), first request finished → its
  status and exact body bytes again, with `Idempotent-Replayed: true`. That includes a stored error response
  (404, 409, `amount_invalid`…) once the request started executing.
- Same key, different fingerprint → 422 `idempotency_key_reused`.
- Same key while the first request is still running → 409 `idempotency_key_in_use` with `Retry-After`.
- Keys are scoped to (merchant, mode) and kept at least IDEMPOTENCY_KEY_TTL seconds (24 h); Celery beat reaps
  older ones (config.platform.idempotency.storage.idempotency_keys_reap).

How a request runs (each step its own transaction, so a crash anywhere leaves a state a retry can finish):
1. `started`: the key row is inserted (or taken over, see below) and leased to this request for
   IDEMPOTENCY_LOCK_TTL seconds with a random `lock_token`.
2. `object_created`: the service runs (payment, capture request, refund…) in one transaction together with the
   key row's move to `object_created` and the created object's id. It commits only if our lease still holds
   (checked under `SELECT … FOR UPDATE` on the key row), so two requests can never both do the work.
3. optional `Prefer: wait=N`: wait for the worker (config.platform.http.waiting), holding no database connection.
4. `finished`: the rendered response is stored on the key row and the lease dropped.

Most requests take a shorter road with the same guarantees: a new key without `Prefer: wait` runs steps 1, 2
and 4 in one transaction (`_run_fresh`): the key row, the work and the stored response commit together or not
at all, so a crash anywhere leaves nothing stored and the retry runs the work as if for the first time. An
advisory lock on the key's scope (`pg_try_advisory_xact_lock`), taken by both roads before they touch the key
row, makes a concurrent duplicate answer 409 at once instead of waiting for the uncommitted row.

A request that dies leaves a lease that expires. A retry with the same key then takes over at the recorded
recovery point: at `started` it runs the work (nothing was committed), at `object_created` it only renders the
object the first request created; it never creates a second one, and no key is stuck for longer than the lease.

Redis is a fast path, never the guarantee: finished responses are cached there for replays, and a `SET NX`
lock turns concurrent duplicates into 409 before they touch PostgreSQL. If Redis is flushed or down, the unique
constraint on (merchant, mode, key) and the lease on the key row decide exactly as before.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import redis
import structlog
from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.http import HttpResponse
from django.utils import timezone
from psycopg.errors import LockNotAvailable
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from config.platform import redisconn
from config.platform.errors import DomainError
from config.platform.http import waiting
from config.platform.http.prefer import prefer_wait
from config.platform.http.problems import PROBLEM_CONTENT_TYPE, Problem, ValidationProblem, problem_response, to_problem
from config.platform.http.rendered import Rendered
from config.platform.idempotency.models import IdempotencyKey, RecoveryPoint

log = structlog.get_logger(__name__)

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
REPLAYED_HEADER = "Idempotent-Replayed"
#: A point inside step 2's transaction, before it commits (a crash there rolls the work back).
PERFORMING = "performing"


@dataclass(frozen=True, kw_only=True)
class Resource:
    """What an idempotent endpoint creates or changes, so that any request (the first or a retry after a crash)
    can reload and render it: `load(id)` reads it, `render(obj)` gives its API form, `in_flight(obj)` is true
    while the worker still has to settle it (then the answer is 202, else the endpoint's done status)."""

    type: str
    load: Callable[[str], Any]
    render: Callable[[Any], dict[str, Any]]
    in_flight: Callable[[Any], bool]


@dataclass(frozen=True)
class _Scope:
    merchant_id: str
    mode: str
    key: str

    def redis_key(self, suffix: str) -> str:
        digest = hashlib.sha256(f"{self.merchant_id}\n{self.mode}\n{self.key}".encode()).hexdigest()
        return f"clearhouse:idem:{digest}:{suffix}"

    def filter(self) -> dict[str, str]:
        return {"merchant_id": self.merchant_id, "mode": self.mode, "key": self.key}


#: Invalid input found once the work started: nothing is stored, the key stays free.
_INVALID_INPUT = (ValidationProblem, ValidationError)


class _LeaseLost(Exception):
    """Another request took this key over (our lease had expired); it does the work, we answer 409."""


def checkpoint(point: str) -> None:
    """Called when a request passes a recovery point: `started`, `performing` (inside the work's transaction,
    before commit), `object_created` and `finished`. Does nothing; the crash tests replace it to stop the process
    at exactly that point (tests/test_idempotency_crash.py)."""


def request_fingerprint(*, method: str, path: str, body: Any) -> str:
    """SHA-256 hex of `METHOD path canonical-json(body)` (sorted keys, no whitespace, UTF-8)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(f"{method.upper()} {path} {canonical}".encode()).hexdigest()


def idempotency_key(request: Request) -> str:
    """The request's `Idempotency-Key`. Raises Problem 400 `idempotency_key_missing` / `idempotency_key_invalid`."""
    key = request.headers.get(HEADER)
    if key is None:
        raise Problem(
            status=400,
            code="idempotency_key_missing",
            title="Idempotency-Key required",
            detail=f"Send an `{HEADER}` header (a unique value such as a UUID) with every POST.",
        )
    if not key.strip() or len(key) > MAX_KEY_LENGTH:
        raise Problem(
            status=400,
            code="idempotency_key_invalid",
            title="Invalid Idempotency-Key",
            detail=f"`{HEADER}` must be 1 to {MAX_KEY_LENGTH} characters and not blank.",
        )
    return key


def json_object_body(request: Request) -> dict[str, Any]:
    """The parsed JSON body, which must be an object (an empty body is `{}`).

    Raises 415 `unsupported_media_type` (not JSON), 400 `invalid_json`, or 400 `validation_error` (not an object).
    """
    data = request.data
    if isinstance(data, dict):
        return dict(data)
    raise ValidationProblem([{"field": "", "code": "invalid", "detail": "The body must be a JSON object."}])


def _render(body: dict[str, Any], status: int) -> HttpResponse:
    return HttpResponse(JSONRenderer().render(body), status=status, content_type="application/json")


def _reused() -> HttpResponse:
    return problem_response(
        Problem(
            status=422,
            code="idempotency_key_reused",
            title="Idempotency key reused",
            detail="This Idempotency-Key was used with a different request; use a new key for a new request.",
        )
    )


def _in_use() -> HttpResponse:
    return problem_response(
        Problem(
            status=409,
            code="idempotency_key_in_use",
            title="Request in progress",
            detail="A request with this Idempotency-Key is still being processed; retry later with the same key.",
        ),
        headers={"Retry-After": "1"},
    )


def _replay(*, status: int, body: bytes, content_type: str) -> HttpResponse:
    response = HttpResponse(body, status=status, content_type=content_type)
    response[REPLAYED_HEADER] = "true"
    return response


# --- Redis fast path -----------------------------------------------------------------------------------------


def _cached(scope: _Scope) -> dict[str, Any] | None:
    try:
        raw = redisconn.client().get(scope.redis_key("response"))
    except redis.RedisError as exc:
        log.warning("idempotency.redis_unavailable", op="get", error=str(exc))
        return None
    return json.loads(raw) if raw else None


def _cache(scope: _Scope, *, fingerprint: str, status: int, body: bytes, content_type: str) -> None:
    value = json.dumps(
        {
            "fingerprint": fingerprint,
            "status": status,
            "content_type": content_type,
            "body": base64.b64encode(body).decode(),
        }
    )
    try:
        redisconn.client().set(scope.redis_key("response"), value, ex=int(settings.IDEMPOTENCY_KEY_TTL))
    except redis.RedisError as exc:
        log.warning("idempotency.redis_unavailable", op="set", error=str(exc))


def _redis_lock(scope: _Scope, token: str) -> bool | None:
    """True: locked by us. False: another request holds it. None: Redis unavailable (the database decides)."""
    try:
        ttl_ms = int(float(settings.IDEMPOTENCY_LOCK_TTL) * 1000)
        return bool(redisconn.client().set(scope.redis_key("lock"), token, nx=True, px=ttl_ms))
    except redis.RedisError as exc:
        log.warning("idempotency.redis_unavailable", op="lock", error=str(exc))
        return None


_UNLOCK = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


def _redis_unlock(scope: _Scope, token: str) -> None:
    try:
        redisconn.client().eval(_UNLOCK, 1, scope.redis_key("lock"), token)
    except redis.RedisError as exc:
        log.warning("idempotency.redis_unavailable", op="unlock", error=str(exc))


# --- The database record ---------------------------------------------------------------------------------------


class _Busy(Exception):
    """Another request holds the key's advisory lock: it is running (or committing) with this key."""


def _lock_scope(scope: _Scope) -> bool:
    """Take the transaction-scoped advisory lock of the key's scope without waiting (raise _Busy if it is held);
    return whether the key row exists, read in the same round trip (the caller still checks its INSERT, since
    a row committed just before the lock was taken may be missing from this statement's snapshot)."""
    digest = hashlib.sha256(f"{scope.merchant_id}\n{scope.mode}\n{scope.key}".encode()).digest()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_try_advisory_xact_lock(%s), EXISTS (SELECT 1 FROM payments_idempotencykey"
            " WHERE merchant_id = %s AND mode = %s AND key = %s)",
            [int.from_bytes(digest[:8], "big", signed=True), scope.merchant_id, scope.mode, scope.key],
        )
        locked, exists = cursor.fetchone()
    if not locked:
        raise _Busy
    return bool(exists)


class _KeyExists(Exception):
    """The key row exists already (committed by an earlier request): take the general road."""


_INSERT_FINISHED = """
INSERT INTO payments_idempotencykey
    (merchant_id, mode, key, method, path, fingerprint, recovery_point, locked_until, lock_token,
     object_type, object_id, response_status, response_body, response_content_type, created_at, updated_at)
VALUES (%s, %s, %s, %s, %s, %s, 'finished', NULL, '', %s, %s, %s, %s, %s, now(), now())
ON CONFLICT (merchant_id, mode, key) DO NOTHING
RETURNING id
"""


def _insert_finished(
    scope: _Scope, *, request: Request, fingerprint: str, object_type: str, object_id: str, response: HttpResponse
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


def _rendered(performed: Any, resource: Resource) -> tuple[Any, dict[str, Any]]:
    """The object `perform` returned and its API form: the one it came with (Rendered), else `resource.render`."""
    if isinstance(performed, Rendered):
        return performed.obj, performed.body
    return performed, resource.render(performed)


def _run_fresh(
    scope: _Scope,
    *,
    fingerprint: str,
    request: Request,
    resource: Resource,
    perform: Callable[[], Any],
    done_status: int,
) -> HttpResponse:
    """Steps 1, 2 and 4 in one transaction, for a key not seen before and no `Prefer: wait`.

    Returns the response (stored as `finished` in the transaction that did the work). Raises _KeyExists when the
    key row exists (the caller takes the general road), _Busy when another request holds the key; invalid input
    propagates with nothing stored. A 4xx problem is stored as the key's answer, like on the general road.
    """
    try:
        with transaction.atomic():
            if _lock_scope(scope):
                raise _KeyExists
            checkpoint(RecoveryPoint.STARTED)
            performed = perform()
            checkpoint(PERFORMING)
            obj, body = _rendered(performed, resource)
            response = _render(body, 202 if resource.in_flight(obj) else done_status)
            if not _insert_finished(
                scope,
                request=request,
                fingerprint=fingerprint,
                object_type=resource.type,
                object_id=str(obj.pk),
                response=response,
            ):
                raise _KeyExists  # committed by another request meanwhile: roll our work back, answer as its retry
    except _INVALID_INPUT as exc:
        # The existence check reads the snapshot taken just before the lock: a request with this key that
        # committed in between is found here, and this request is answered as its retry.
        if IdempotencyKey.objects.filter(**scope.filter()).exists():
            raise _KeyExists from exc
        raise
    except (Problem, DomainError) as exc:
        problem = to_problem(exc)
        if problem is None or problem.status >= 500:
            raise
        response = problem_response(problem)
        with transaction.atomic():
            _lock_scope(scope)
            if not _insert_finished(
                scope, request=request, fingerprint=fingerprint, object_type="", object_id="", response=response
            ):
                raise _KeyExists from exc
    _cache(
        scope,
        fingerprint=fingerprint,
        status=response.status_code,
        body=response.content,
        content_type=response["Content-Type"],
    )
    checkpoint(RecoveryPoint.FINISHED)
    return response


def _begin(scope: _Scope, *, fingerprint: str, request: Request, token: str) -> IdempotencyKey | HttpResponse:
    """Step 1: insert the key row or take over an abandoned one; or answer (replay, 409, 422) instead.

    A key row locked by the request that owns it (it is committing its work) is 409 at once (`NOWAIT`).
    """
    try:
        return _begin_locked(scope, fingerprint=fingerprint, request=request, token=token)
    except _Busy:
        return _in_use()
    except OperationalError as exc:
        if isinstance(exc.__cause__, LockNotAvailable):
            return _in_use()
        raise


def _begin_locked(scope: _Scope, *, fingerprint: str, request: Request, token: str) -> IdempotencyKey | HttpResponse:
    now = timezone.now()
    lease = now + timedelta(seconds=float(settings.IDEMPOTENCY_LOCK_TTL))
    with transaction.atomic():
        _lock_scope(scope)
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
            return _reused()
        if record.recovery_point == RecoveryPoint.FINISHED:
            body = bytes(record.response_body or b"")
            _cache(
                scope,
                fingerprint=fingerprint,
                status=record.response_status or 500,
                body=body,
                content_type=record.response_content_type,
            )
            return _replay(status=record.response_status or 500, body=body, content_type=record.response_content_type)
        if record.locked_until is not None and record.locked_until > now:
            return _in_use()
        log.warning("idempotency.recovering", recovery_point=record.recovery_point, key_id=record.pk)
        record.locked_until = lease
        record.lock_token = token
        record.save(update_fields=["locked_until", "lock_token", "updated_at"])
        return record


def _perform(
    record: IdempotencyKey, *, token: str, resource: Resource, perform: Callable[[], Any]
) -> IdempotencyKey | HttpResponse:
    """Step 2: run the work and move the key to `object_created` in one transaction; or store an error answer."""
    try:
        with transaction.atomic():
            locked = IdempotencyKey.objects.select_for_update().get(pk=record.pk)
            if locked.lock_token != token or locked.recovery_point != RecoveryPoint.STARTED:
                raise _LeaseLost
            performed = perform()
            checkpoint(PERFORMING)
            obj = performed.obj if isinstance(performed, Rendered) else performed
            locked.recovery_point = RecoveryPoint.OBJECT_CREATED
            locked.object_type = resource.type
            locked.object_id = str(obj.pk)
            locked.save(update_fields=["recovery_point", "object_type", "object_id", "updated_at"])
            return locked
    except _LeaseLost:
        return _in_use()
    except _INVALID_INPUT:
        # Invalid input found by the service: nothing is stored, so the key may be used again.
        IdempotencyKey.objects.filter(pk=record.pk, lock_token=token, recovery_point=RecoveryPoint.STARTED).delete()
        raise
    except (Problem, DomainError) as exc:
        problem = to_problem(exc)
        if problem is None or problem.status >= 500:
            _release(record, token)
            raise
        response = problem_response(problem)
        _finish(record, token=token, response=response)
        return response
    except BaseException:
        _release(record, token)
        raise


def _release(record: IdempotencyKey, token: str) -> None:
    """Drop our lease after an unexpected error, so a retry may run at once (the work was rolled back)."""
    try:
        IdempotencyKey.objects.filter(pk=record.pk, lock_token=token).update(locked_until=None)
    except Exception as exc:  # the database may be what failed; the lease then simply expires
        log.warning("idempotency.release_failed", error=str(exc))


def _store(record: IdempotencyKey, *, token: str, response: HttpResponse) -> bool:
    """Store the exact response as `finished` and drop the lease, only while the key is still ours."""
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


def _cache_finished(record: IdempotencyKey, response: HttpResponse) -> None:
    """Put a committed answer on the Redis fast path (only ever after the commit that stored it)."""
    _cache(
        _Scope(record.merchant_id, record.mode, record.key),
        fingerprint=record.fingerprint,
        status=response.status_code,
        body=response.content,
        content_type=response["Content-Type"],
    )


def _finish(record: IdempotencyKey, *, token: str, response: HttpResponse) -> None:
    """Step 4 (in autocommit): store the answer, then cache it for replays."""
    if _store(record, token=token, response=response):
        _cache_finished(record, response)


def _identify(request: Request, body: dict[str, Any]) -> tuple[_Scope, str, HttpResponse | None]:
    """The request's key scope and fingerprint, and the answer when Redis already holds one for the key: the
    stored answer (a replay) or 422 `idempotency_key_reused`. Raises Problem 400 for a missing or invalid key.

    A stored answer is replayed before the body is validated again: the same fingerprint is the same body, which
    passed validation the first time (an invalid body stores nothing, so it is never in the cache).
    """
    principal = request.user
    scope = _Scope(principal.merchant.pk, principal.mode, idempotency_key(request))
    fingerprint = request_fingerprint(method=request.method, path=request.path, body=body)
    cached = _cached(scope)
    if cached is None:
        return scope, fingerprint, None
    if cached["fingerprint"] != fingerprint:
        return scope, fingerprint, _reused()
    answer = _replay(
        status=cached["status"], body=base64.b64decode(cached["body"]), content_type=cached["content_type"]
    )
    return scope, fingerprint, answer


def execute(
    request: Request,
    *,
    serializer_class: type[serializers.Serializer],
    perform: Callable[[dict[str, Any]], Any],
    resource: Resource,
    done_status: int,
    waitable: bool = False,
) -> HttpResponse:
    """Run a mutating endpoint idempotently (see the module docstring) and return the exact bytes sent.

    A stored answer for the key is replayed first; otherwise `serializer_class` validates the JSON body (400 and
    nothing stored on failure), then `perform(validated)` calls one service and returns the object it created or
    changed; `resource` renders that object (and reloads it on a retry). A `perform` that returns a Rendered
    (the object with the API form its service already rendered for the event it recorded) is answered with that
    form on the short road (`_run_fresh`), so it is rendered once; the general road (`Prefer: wait`, recovery)
    reloads the object and renders it.
    The answer is `done_status` (200 or 201) when the object is settled, 202 while the worker still works on it;
    with `waitable`, `Prefer: wait=N` holds the answer up to N seconds (≤ API_PREFER_WAIT_MAX) for it to settle.
    """
    body = json_object_body(request)
    scope, fingerprint, answered = _identify(request, body)
    if answered is not None:
        return answered
    serializer = serializer_class(data=body)
    serializer.is_valid(raise_exception=True)
    validated = serializer.validated_data

    token = secrets.token_hex(16)
    redis_locked = _redis_lock(scope, token)
    if redis_locked is False:
        return _in_use()
    try:
        if not (waitable and prefer_wait(request) > 0):
            try:
                return _run_fresh(
                    scope,
                    fingerprint=fingerprint,
                    request=request,
                    resource=resource,
                    perform=lambda: perform(validated),
                    done_status=done_status,
                )
            except _Busy:
                return _in_use()
            except _KeyExists:
                pass  # an earlier request stored the key: replay it, refuse it or take it over, below
        begun = _begin(scope, fingerprint=fingerprint, request=request, token=token)
        if isinstance(begun, HttpResponse):
            return begun
        record = begun
        checkpoint(RecoveryPoint.STARTED)
        if record.recovery_point == RecoveryPoint.STARTED:
            performed = _perform(record, token=token, resource=resource, perform=lambda: perform(validated))
            if isinstance(performed, HttpResponse):
                return performed
            record = performed
            checkpoint(RecoveryPoint.OBJECT_CREATED)
        try:
            obj = resource.load(record.object_id)
            seconds = prefer_wait(request) if waitable else 0.0
            if seconds > 0 and resource.in_flight(obj):
                obj = waiting.wait_for(
                    record.object_id,
                    load=lambda: resource.load(record.object_id),
                    settled=lambda o: not resource.in_flight(o),
                    timeout=seconds,
                )
            response = _render(resource.render(obj), 202 if resource.in_flight(obj) else done_status)
            _finish(record, token=token, response=response)
        except BaseException:
            _release(record, token)
            raise
        checkpoint(RecoveryPoint.FINISHED)
        return response
    finally:
        if redis_locked:
            _redis_unlock(scope, token)


def idempotent(view: Callable[..., Response]) -> Callable[..., HttpResponse]:
    """Decorate a DRF view method (POST) whose work and answer are one step, to make it idempotent.

    For endpoints that have no object to reload (new endpoints should use `execute`, which also recovers at
    `object_created` and supports `Prefer: wait`). Same answers as `execute`: the key is stored (`started`), then
    the view runs and its rendered DRF Response is stored as `finished` in one transaction, so a crash leaves the
    key at `started` and a retry runs the view again. A ValidationProblem from the view stores nothing; other
    4xx problems are stored and replayed; unexpected errors free the key.
    """

    @functools.wraps(view)
    def wrapper(self: Any, request: Request, *args: Any, **kwargs: Any) -> HttpResponse:
        scope, fingerprint, answered = _identify(request, json_object_body(request))
        if answered is not None:
            return answered
        token = secrets.token_hex(16)
        redis_locked = _redis_lock(scope, token)
        if redis_locked is False:
            return _in_use()
        try:
            begun = _begin(scope, fingerprint=fingerprint, request=request, token=token)
            if isinstance(begun, HttpResponse):
                return begun
            record = begun
            try:
                with transaction.atomic():
                    locked = IdempotencyKey.objects.select_for_update().get(pk=record.pk)
                    if locked.lock_token != token or locked.recovery_point != RecoveryPoint.STARTED:
                        raise _LeaseLost
                    result = view(self, request, *args, **kwargs)
                    response = _render(result.data, result.status_code)
                    stored = _store(record, token=token, response=response)
                if stored:
                    _cache_finished(record, response)
                return response
            except _LeaseLost:
                return _in_use()
            except _INVALID_INPUT:
                IdempotencyKey.objects.filter(pk=record.pk, lock_token=token).delete()
                raise
            except (Problem, DomainError) as exc:
                problem = to_problem(exc)
                if problem is None or problem.status >= 500:
                    _release(record, token)
                    raise
                response = problem_response(problem)
                _finish(record, token=token, response=response)
                return response
            except BaseException:
                _release(record, token)
                raise
        finally:
            if redis_locked:
                _redis_unlock(scope, token)

    return wrapper


__all__ = [
    "HEADER",
    "PROBLEM_CONTENT_TYPE",
    "REPLAYED_HEADER",
    "Resource",
    "execute",
    "idempotent",
    "request_fingerprint",
]
