"""The HTTP face of idempotency keys: the request's `Idempotency-Key` and JSON body, and every answer the flow
gives besides the endpoint's own (replays, 409 `idempotency_key_in_use`, 422 `idempotency_key_reused`, and the
stored answer of an error). Pure functions of their arguments: no database, no Redis.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request

from config.platform.errors import DomainError
from config.platform.http.problems import Problem, ValidationProblem, problem_response, to_problem

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
REPLAYED_HEADER = "Idempotent-Replayed"

#: Invalid input found once the work started: nothing is stored, the key stays free.
INVALID_INPUT = (ValidationProblem, ValidationError)


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


def render(body: dict[str, Any], status: int) -> HttpResponse:
    """The endpoint's own answer: `body` as JSON (the exact bytes that are stored and replayed)."""
    return HttpResponse(JSONRenderer().render(body), status=status, content_type="application/json")


def error_answer(exc: BaseException) -> HttpResponse | None:
    """The answer an error raised by the work leaves on its key, or None when it leaves none.

    A Problem or DomainError below 500 (404 `not_found`, 409 `payment_invalid_state`, `amount_invalid`…) is the
    key's answer just like a success: the caller stores it, caches it, and it is replayed from then on.
    None (the caller stores nothing and re-raises) for invalid input (`INVALID_INPUT`: the key stays free for a
    fixed body), for 5xx problems and for every other exception (the work was rolled back; a retry runs it again).
    """
    if isinstance(exc, INVALID_INPUT) or not isinstance(exc, (Problem, DomainError)):
        return None
    problem = to_problem(exc)
    if problem is None or problem.status >= 500:
        return None
    return problem_response(problem)


def reused() -> HttpResponse:
    """422 `idempotency_key_reused`: the key was used with another method, path or body."""
    return problem_response(
        Problem(
            status=422,
            code="idempotency_key_reused",
            title="Idempotency key reused",
            detail="This Idempotency-Key was used with a different request; use a new key for a new request.",
        )
    )


def in_use() -> HttpResponse:
    """409 `idempotency_key_in_use` with `Retry-After: 1`: the key's first request is still running."""
    return problem_response(
        Problem(
            status=409,
            code="idempotency_key_in_use",
            title="Request in progress",
            detail="A request with this Idempotency-Key is still being processed; retry later with the same key.",
        ),
        headers={"Retry-After": "1"},
    )


def replay(*, status: int, body: bytes, content_type: str) -> HttpResponse:
    """A stored answer sent again: its status and exact bytes, with `Idempotent-Replayed: true`."""
    response = HttpResponse(body, status=status, content_type=content_type)
    response[REPLAYED_HEADER] = "true"
    return response
