"""Idempotency keys on mutating endpoints (draft-ietf-httpapi-idempotency-key-header; Stripe's replay rules).

- `Idempotency-Key` is required on every POST: missing → 400 `idempotency_key_missing`; empty or longer than
  255 characters → 400 `idempotency_key_invalid`.
- Keys are scoped to (merchant, mode). The first request's response (status and exact body bytes) is stored in
  the same database transaction as the work it did; a later request with the same key and the same fingerprint
  gets those bytes again with `Idempotent-Replayed: true` and does nothing.
- Same key, different fingerprint (method, path, canonical JSON body) → 422 `idempotency_key_reused`.
- A key whose first request is still running → 409 `idempotency_key_in_use` (a PostgreSQL advisory lock on the
  key, taken with `pg_try_advisory_xact_lock`, so waiting costs nothing).
- Requests that fail validation, and 5xx, store nothing: the client may fix and retry with the same key. Domain
  errors raised once the request started executing (e.g. 409 `payment_invalid_state`) are stored and replayed.

The unique constraint on (merchant, mode, key) is the guarantee; the lock only turns a race into a clean 409.
Because the work and the stored response commit together, a crash at any point leaves either nothing (a retry
runs it) or both (a retry replays it): a key is never stuck.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.http import HttpResponse
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from payments.api.problems import PROBLEM_CONTENT_TYPE, Problem, ValidationProblem, problem_response, to_problem
from payments.errors import PaymentsError
from payments.models import IdempotencyKey

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
REPLAYED_HEADER = "Idempotent-Replayed"


def request_fingerprint(*, method: str, path: str, body: Any) -> str:
    """SHA-256 hex of `METHOD path canonical-json(body)` (sorted keys, no whitespace)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(f"{method.upper()} {path} {canonical}".encode()).hexdigest()


def _lock_id(merchant_id: str, mode: str, key: str) -> int:
    digest = hashlib.sha256(f"idem:{merchant_id}:{mode}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _replay(stored: IdempotencyKey, fingerprint: str) -> HttpResponse:
    if stored.fingerprint != fingerprint:
        return problem_response(
            Problem(
                status=422,
                code="idempotency_key_reused",
                title="Idempotency key reused",
                detail="This Idempotency-Key was used with a different request; use a new key for a new request.",
            )
        )
    response = HttpResponse(
        bytes(stored.response_body), status=stored.response_status, content_type=stored.response_content_type
    )
    response[REPLAYED_HEADER] = "true"
    return response


def _in_use() -> HttpResponse:
    return problem_response(
        Problem(
            status=409,
            code="idempotency_key_in_use",
            title="Request in progress",
            detail="A request with this Idempotency-Key is still being processed; retry later.",
        ),
        headers={"Retry-After": "1"},
    )


def _render(response: Response) -> HttpResponse:
    body = JSONRenderer().render(response.data)
    content_type = response.content_type or "application/json"
    return HttpResponse(body, status=response.status_code, content_type=content_type)


def idempotent(view: Callable[..., Response]) -> Callable[..., HttpResponse]:
    """Decorate a DRF view method (POST) to make it idempotent as described in this module's docstring.

    The wrapped method runs inside the transaction that stores the key, so its writes and the stored response
    commit together. It must return a DRF Response (rendered here to the exact bytes stored and sent).
    """

    @functools.wraps(view)
    def wrapper(self: Any, request: Request, *args: Any, **kwargs: Any) -> HttpResponse:
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
                detail=f"`{HEADER}` must be 1 to {MAX_KEY_LENGTH} characters.",
            )
        principal = request.user
        merchant_id, mode = principal.merchant.pk, principal.mode
        body = request.data if isinstance(request.data, dict) else dict(request.data)
        fingerprint = request_fingerprint(method=request.method, path=request.path, body=body)
        scope = {"merchant_id": merchant_id, "mode": mode, "key": key}

        stored = IdempotencyKey.objects.filter(**scope).first()
        if stored is not None:
            return _replay(stored, fingerprint)

        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_lock_id(merchant_id, mode, key)])
                    if not cursor.fetchone()[0]:
                        return _in_use()
                stored = IdempotencyKey.objects.filter(**scope).first()
                if stored is not None:
                    return _replay(stored, fingerprint)
                try:
                    with transaction.atomic():
                        rendered = _render(view(self, request, *args, **kwargs))
                except ValidationProblem:
                    raise
                except (Problem, PaymentsError) as exc:
                    problem = to_problem(exc)
                    assert problem is not None
                    if problem.status >= 500 or isinstance(problem, ValidationProblem):
                        raise
                    rendered = problem_response(problem)
                IdempotencyKey.objects.create(
                    **scope,
                    method=request.method,
                    path=request.path[:255],
                    fingerprint=fingerprint,
                    response_status=rendered.status_code,
                    response_body=rendered.content,
                    response_content_type=rendered["Content-Type"],
                )
        except IntegrityError:
            # Another request stored the same key between our check and our insert: the constraint decided.
            stored = IdempotencyKey.objects.filter(**scope).first()
            if stored is None:
                raise
            return _replay(stored, fingerprint)
        return rendered

    return wrapper


__all__ = ["HEADER", "PROBLEM_CONTENT_TYPE", "idempotent", "request_fingerprint"]
