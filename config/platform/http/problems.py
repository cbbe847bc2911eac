"""Errors as RFC 9457 `application/problem+json` documents with a stable machine `code`.

Body: `{"type", "title", "status", "detail", "code", …}`; validation errors add
`"errors": [{"field": "amount", "code": "invalid", "detail": "…"}]`. `type` is a URI reference naming the code
(`/problems/<code>`); every code is listed in docs/api.md.
"""

from __future__ import annotations

import json
from typing import Any

import structlog
from django.http import Http404, HttpRequest, HttpResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response

from config.platform.errors import DomainError

PROBLEM_CONTENT_TYPE = "application/problem+json"
log = structlog.get_logger(__name__)


class Problem(Exception):
    """An error to answer as a problem document: HTTP `status`, stable `code`, `title`, `detail`, extras."""

    def __init__(self, *, status: int, code: str, title: str, detail: str = "", **extra: Any) -> None:
        super().__init__(detail or title)
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail or title
        self.extra = extra

    def as_dict(self) -> dict[str, Any]:
        """The problem document as a dict (RFC 9457 members first, then `code` and extensions)."""
        body: dict[str, Any] = {
            "type": f"/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        body.update(self.extra)
        return body


class ValidationProblem(Problem):
    """400 `validation_error` with the offending fields. Nothing is stored for such a request."""

    def __init__(self, errors: list[dict[str, str]], detail: str = "") -> None:
        fields = ", ".join(e["field"] for e in errors) or "request"
        super().__init__(
            status=400,
            code="validation_error",
            title="Invalid request",
            detail=detail or f"Invalid value for: {fields}.",
            errors=errors,
        )


def problem_response(problem: Problem, headers: dict[str, str] | None = None) -> HttpResponse:
    """A Django response carrying `problem` as application/problem+json."""
    body = json.dumps(problem.as_dict(), separators=(",", ":")).encode()
    response = HttpResponse(body, status=problem.status, content_type=PROBLEM_CONTENT_TYPE)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _flatten(detail: Any, prefix: str = "") -> list[dict[str, str]]:
    errors: list[dict[str, str]] = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            field = key if key != "non_field_errors" else ""
            errors += _flatten(value, f"{prefix}.{field}" if prefix and field else (prefix or field))
    elif isinstance(detail, list):
        for item in detail:
            if isinstance(item, (dict, list)):
                errors += _flatten(item, prefix)
            else:
                errors.append({"field": prefix, "code": getattr(item, "code", "invalid"), "detail": str(item)})
    else:
        errors.append({"field": prefix, "code": getattr(detail, "code", "invalid"), "detail": str(detail)})
    return errors


def to_problem(exc: Exception) -> Problem | None:
    """Map an exception to a Problem, or None when it is unexpected (then it is a 500)."""
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, DomainError):
        return Problem(status=exc.status, code=exc.code, title=exc.title, detail=exc.detail, **exc.extra)
    if isinstance(exc, drf_exceptions.ValidationError):
        return ValidationProblem(_flatten(exc.detail))
    if isinstance(exc, drf_exceptions.ParseError):
        return Problem(status=400, code="invalid_json", title="Malformed JSON", detail=str(exc.detail))
    if isinstance(exc, drf_exceptions.NotAuthenticated):
        return Problem(
            status=401,
            code="authentication_required",
            title="Authentication required",
            detail="Send your secret API key as `Authorization: Bearer sk_…`.",
        )
    if isinstance(exc, drf_exceptions.AuthenticationFailed):
        return Problem(status=401, code="invalid_api_key", title="Invalid API key", detail=str(exc.detail))
    if isinstance(exc, drf_exceptions.PermissionDenied):
        return Problem(status=403, code="forbidden", title="Forbidden", detail=str(exc.detail))
    if isinstance(exc, (drf_exceptions.NotFound, Http404)):
        return Problem(status=404, code="not_found", title="Not found", detail="No such object.")
    if isinstance(exc, drf_exceptions.MethodNotAllowed):
        return Problem(status=405, code="method_not_allowed", title="Method not allowed", detail=str(exc.detail))
    if isinstance(exc, drf_exceptions.NotAcceptable):
        return Problem(status=406, code="not_acceptable", title="Not acceptable", detail=str(exc.detail))
    if isinstance(exc, drf_exceptions.UnsupportedMediaType):
        return Problem(
            status=415,
            code="unsupported_media_type",
            title="Unsupported media type",
            detail="Send the request body as application/json.",
        )
    if isinstance(exc, drf_exceptions.Throttled):
        return Problem(status=429, code="rate_limited", title="Too many requests", detail=str(exc.detail))
    if isinstance(exc, drf_exceptions.APIException):
        return Problem(status=exc.status_code, code=str(exc.default_code), title="Error", detail=str(exc.detail))
    return None


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF EXCEPTION_HANDLER: every handled error becomes a problem document; unexpected ones propagate (500)."""
    problem = to_problem(exc)
    if problem is None:
        return None
    headers = {}
    if problem.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="clearhouse"'
    if isinstance(exc, drf_exceptions.Throttled) and exc.wait:
        headers["Retry-After"] = str(int(exc.wait))
    return Response(problem.as_dict(), status=problem.status, headers=headers, content_type=PROBLEM_CONTENT_TYPE)


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/v1/") or request.path == "/v1"


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django 404 handler: a problem document under /v1, Django's page elsewhere."""
    if _is_api(request):
        return problem_response(Problem(status=404, code="not_found", title="Not found", detail="No such URL."))
    from django.views.defaults import page_not_found

    return page_not_found(request, exception or Http404())


def handler500(request: HttpRequest) -> HttpResponse:
    """Django 500 handler: a problem document under /v1 (no internals leaked), Django's page elsewhere."""
    if _is_api(request):
        return problem_response(
            Problem(
                status=500,
                code="internal_error",
                title="Internal error",
                detail="Something went wrong on our side; it is safe to retry with the same Idempotency-Key.",
            )
        )
    from django.views.defaults import server_error

    return server_error(request)
