"""Refuse anything that looks like a card number in an API request, before any view, log or storage sees it.

A card number here is 13–19 digits that pass the Luhn check (ISO/IEC 7812-1), written either as one run of digits
or in the groups cards are printed in (4-4-4-4, 4-4-4-1…4, 4-4-4-4-1…3, and 4-6-5 / 4-6-4 for Amex and Diners),
separated by single spaces or dashes. Other groupings are not card-like: a UUID such as an Idempotency-Key
(8-4-4-4-12 hex) never matches, however many of its characters happen to be digits.

The guard scans the query string, header values (except Authorization and Cookie) and the body, both raw and,
for JSON, after decoding string escapes. A match is answered with 400 `pan_not_allowed`;
the value is never logged or echoed. Clearhouse handles processor tokens only (PCI DSS scope reduction).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote_plus

import structlog
from django.http import HttpRequest, HttpResponse

from config.platform.http.problems import Problem, problem_response

log = structlog.get_logger(__name__)

_CANDIDATE = re.compile(
    r"(?<!\d)\d{13,19}(?!\d)"  # one run of digits
    r"|(?<![0-9A-Za-z])(?:"  # or printed groups, standing alone (not the inside of a longer token)
    r"\d{4}[ -]\d{4}[ -]\d{4}[ -]\d{4}[ -]\d{1,3}"  # 17–19 digits in groups of 4
    r"|\d{4}[ -]\d{4}[ -]\d{4}[ -]\d{1,4}"  # 13–16 digits in groups of 4
    r"|\d{4}[ -]\d{6}[ -]\d{4,5}"  # Amex 4-6-5, Diners 4-6-4
    r")(?![0-9A-Za-z])"
)
_SKIP_HEADERS = {"HTTP_AUTHORIZATION", "HTTP_COOKIE"}


def luhn_valid(digits: str) -> bool:
    """True when the digit string passes the Luhn (mod 10) check."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def contains_card_number(text: str) -> bool:
    """True when `text` contains a card-like run or grouping of 13–19 digits that passes the Luhn check."""
    for match in _CANDIDATE.finditer(text):
        digits = re.sub(r"[ -]", "", match.group())
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            return True
    return False


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, (int, float)):
        yield str(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def request_contains_card_number(request: HttpRequest) -> bool:
    """Scan the query string, headers and body of `request` (see module docstring)."""
    query = request.META.get("QUERY_STRING", "")
    if query and (contains_card_number(query) or contains_card_number(unquote_plus(query))):
        return True
    for name, value in request.META.items():
        if name.startswith("HTTP_") and name not in _SKIP_HEADERS and isinstance(value, str):
            if contains_card_number(value):
                return True
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        raw = request.body.decode("utf-8", errors="replace")
        if contains_card_number(raw):
            return True
        try:
            parsed = json.loads(raw) if raw.strip() else None
        except ValueError:
            parsed = None
        if parsed is not None and any(contains_card_number(s) for s in _strings(parsed)):
            return True
    return False


class CardNumberGuardMiddleware:
    """Django middleware applying the guard to every `/v1/` request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/v1/") and request_contains_card_number(request):
            log.warning("api.card_number_refused", path=request.path, method=request.method)
            return problem_response(
                Problem(
                    status=400,
                    code="pan_not_allowed",
                    title="Card numbers are not accepted",
                    detail="The request contains what looks like a card number. Send a processor token instead "
                    "(for the sandbox, exchange a test card for a token at the sandbox acquirer).",
                )
            )
        return self.get_response(request)


class RequestIdHeaderMiddleware:
    """Adds `Request-Id` to every response: the id under which the request was logged (quote it to support).

    The id is django-structlog's (an upstream `X-Request-ID`, or a new UUID); it is also stored on the outbox rows
    and events the request causes, so the worker's logs for that payment carry it too.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        request_id = structlog.contextvars.get_contextvars().get("request_id")
        if request_id:
            response["Request-Id"] = str(request_id)[:64]
        return response


class BodySizeLimitMiddleware:
    """Answers 413 `payload_too_large` to a `/v1/` request whose body is over API_MAX_BODY_BYTES (65536 by default)
    before anything reads it (RFC 9110 §15.5.14). Runs before the card-number guard, so a huge body is never
    scanned. The limit is checked against `Content-Length`; Django's DATA_UPLOAD_MAX_MEMORY_SIZE backs it up."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/v1/"):
            from django.conf import settings

            limit = int(settings.API_MAX_BODY_BYTES)
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > limit:
                return problem_response(
                    Problem(
                        status=413,
                        code="payload_too_large",
                        title="Request body too large",
                        detail=f"The request body may be at most {limit} bytes.",
                    )
                )
        return self.get_response(request)
