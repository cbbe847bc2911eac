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

Callbacks into the endpoint (`execute`, `Resource`): `perform(validated)` runs inside the transaction that
writes the key row, so its work commits only together with the key; `resource.render`/`in_flight` build the
answer (on the one-transaction road before its commit); `resource.load` rereads the object on the step-by-step
road once step 2 committed, in this request or in a retry after a crash. None sees a key row, lease or Redis.

Modules: this one runs the steps in order (`execute`) and is what endpoints import; `storage` holds the key
rows (scope, fingerprint, advisory lock, claim and lease, stored answers, the reaper); `cache` the Redis fast
path; `answers` the header, the body and the answers that are not the endpoint's own (replays, 409, 422, errors).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.http import HttpResponse
from rest_framework import serializers
from rest_framework.request import Request

from config.platform.http import waiting
from config.platform.http.prefer import prefer_wait
from config.platform.http.problems import PROBLEM_CONTENT_TYPE
from config.platform.http.rendering import Rendered
from config.platform.idempotency import answers, cache, storage
from config.platform.idempotency.answers import (
    HEADER,
    MAX_KEY_LENGTH,
    REPLAYED_HEADER,
    idempotency_key,
    json_object_body,
)
from config.platform.idempotency.models import IdempotencyKey, RecoveryPoint
from config.platform.idempotency.storage import Scope, request_fingerprint

#: A point inside step 2's transaction, before it commits (a crash there rolls the work back).
PERFORMING = "performing"


@dataclass(frozen=True, kw_only=True)
class Resource:
    """What an idempotent endpoint creates or changes, so that any request (the first or a retry after a crash)
    can reload and render it: `load(id)` reads it, `render(obj)` gives its API form, `in_flight(obj)` is true
    while the worker still has to settle it (then the answer is 202, else the endpoint's done status).

    Plain functions of the object, with no request state: they may run in a later request than the one whose
    `perform` created the object (a retry after a crash), and `render`'s dict is the body stored and replayed.
    `type` names the object on the key row (`object_type`); `load` receives the str of the object's `pk`.
    """

    type: str
    load: Callable[[str], Any]
    render: Callable[[Any], dict[str, Any]]
    in_flight: Callable[[Any], bool]


def checkpoint(point: str) -> None:
    """Called when a request passes a recovery point: `started`, `performing` (inside the work's transaction,
    before commit), `object_created` and `finished`. Does nothing; the crash tests replace it to stop the process
    at exactly that point (tests/config/platform/test_idempotency_crash.py)."""


def _answer(resource: Resource, obj: Any, done_status: int, *, body: dict[str, Any] | None = None) -> HttpResponse:
    """The answer for `obj`: `body` when its service already rendered it (Rendered), else `resource.render(obj)`;
    202 while the worker still works on it, else `done_status`."""
    rendered = body if body is not None else resource.render(obj)
    return answers.render(rendered, 202 if resource.in_flight(obj) else done_status)


def _unwrap(performed: Any) -> tuple[Any, dict[str, Any] | None]:
    """The object `perform` returned, and the API form its service rendered with it (Rendered), if any."""
    if isinstance(performed, Rendered):
        return performed.obj, performed.body
    return performed, None


def _run_fresh(
    scope: Scope,
    *,
    fingerprint: str,
    request: Request,
    resource: Resource,
    perform: Callable[[], Any],
    done_status: int,
) -> HttpResponse:
    """Steps 1, 2 and 4 in one transaction, for a key not seen before and no `Prefer: wait`.

    Returns the response (stored as `finished` in the transaction that did the work). Raises KeyExists when the
    key row exists (the caller takes the general road), Busy when another request holds the key; invalid input
    propagates with nothing stored. A 4xx problem is stored as the key's answer, like on the general road.
    """
    try:
        with transaction.atomic():
            if storage.lock_scope(scope):
                raise storage.KeyExists
            checkpoint(RecoveryPoint.STARTED)
            obj, body = _unwrap(perform())
            checkpoint(PERFORMING)
            response = _answer(resource, obj, done_status, body=body)
            stored = storage.insert_finished(
                scope,
                request=request,
                fingerprint=fingerprint,
                object_type=resource.type,
                object_id=str(obj.pk),
                response=response,
            )
            if not stored:  # committed by another request meanwhile: roll our work back, answer as its retry
                raise storage.KeyExists
    except answers.INVALID_INPUT as exc:
        # The existence check reads the snapshot taken just before the lock: a request with this key that
        # committed in between is found here, and this request is answered as its retry.
        if storage.exists(scope):
            raise storage.KeyExists from exc
        raise
    except BaseException as exc:
        response = answers.error_answer(exc)
        if response is None:
            raise
        with transaction.atomic():  # the work rolled back: store the error as the key's answer instead
            storage.lock_scope(scope)
            stored = storage.insert_finished(
                scope, request=request, fingerprint=fingerprint, object_type="", object_id="", response=response
            )
            if not stored:
                raise storage.KeyExists from exc
    cache.remember(scope, fingerprint=fingerprint, response=response)
    checkpoint(RecoveryPoint.FINISHED)
    return response


def _perform(
    record: IdempotencyKey, *, token: str, resource: Resource, perform: Callable[[], Any]
) -> IdempotencyKey | HttpResponse:
    """Step 2: run the work and move the key to `object_created` in one transaction; or store an error answer."""
    try:
        with transaction.atomic():
            locked = storage.lock_owned(record, token)
            obj, _ = _unwrap(perform())
            checkpoint(PERFORMING)
            storage.mark_object_created(locked, object_type=resource.type, object_id=str(obj.pk))
            return locked
    except storage.LeaseLost:
        return answers.in_use()
    except answers.INVALID_INPUT:
        storage.forget(record, token)  # invalid input found by the service: nothing is stored, the key is free
        raise
    except BaseException as exc:
        response = answers.error_answer(exc)
        if response is None:
            storage.release(record, token)
            raise
        _finish(record, token=token, response=response)
        return response


def _finish(record: IdempotencyKey, *, token: str, response: HttpResponse) -> None:
    """Step 4 (in autocommit): store the answer, then cache it for replays."""
    if storage.store(record, token=token, response=response):
        cache.remember(
            Scope(record.merchant_id, record.mode, record.key), fingerprint=record.fingerprint, response=response
        )


def _identify(request: Request, body: dict[str, Any]) -> tuple[Scope, str, HttpResponse | None]:
    """The request's key scope and fingerprint, and the answer when Redis already holds one for the key: the
    stored answer (a replay) or 422 `idempotency_key_reused`. Raises Problem 400 for a missing or invalid key.

    A stored answer is replayed before the body is validated again: the same fingerprint is the same body, which
    passed validation the first time (an invalid body stores nothing, so it is never in the cache).
    """
    principal = request.user
    scope = Scope(principal.merchant.pk, principal.mode, idempotency_key(request))
    fingerprint = request_fingerprint(method=request.method, path=request.path, body=body)
    cached = cache.cached(scope)
    if cached is None:
        return scope, fingerprint, None
    cached_fingerprint, replay = cached
    return scope, fingerprint, replay if cached_fingerprint == fingerprint else answers.reused()


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

    `perform` may raise a ValidationProblem or DRF ValidationError (400, nothing stored), a Problem or DomainError
    below 500 (stored and replayed as the key's answer, `answers.error_answer`) or anything else (500, nothing
    stored, the key is free again). It is not called when the key already has its object (`object_created`).
    """
    body = json_object_body(request)
    scope, fingerprint, answered = _identify(request, body)
    if answered is not None:
        return answered
    serializer = serializer_class(data=body)
    serializer.is_valid(raise_exception=True)
    validated = serializer.validated_data

    token = secrets.token_hex(16)
    redis_locked = cache.lock(scope, token)
    if redis_locked is False:
        return answers.in_use()
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
            except storage.Busy:
                return answers.in_use()
            except storage.KeyExists:
                pass  # an earlier request stored the key: replay it, refuse it or take it over, below
        begun = storage.begin(scope, fingerprint=fingerprint, request=request, token=token)
        if isinstance(begun, HttpResponse):
            return begun
        if begun.recovery_point == RecoveryPoint.FINISHED:
            replay = storage.stored_answer(begun)
            cache.remember(scope, fingerprint=fingerprint, response=replay)  # refill the fast path
            return replay
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
            response = _answer(resource, obj, done_status)
            _finish(record, token=token, response=response)
        except BaseException:
            storage.release(record, token)
            raise
        checkpoint(RecoveryPoint.FINISHED)
        return response
    finally:
        if redis_locked:
            cache.unlock(scope, token)


__all__ = [
    "HEADER",
    "MAX_KEY_LENGTH",
    "PERFORMING",
    "PROBLEM_CONTENT_TYPE",
    "REPLAYED_HEADER",
    "Resource",
    "checkpoint",
    "execute",
    "idempotency_key",
    "json_object_body",
    "request_fingerprint",
]
