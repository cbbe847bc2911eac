"""Cursor paging for list endpoints (Stripe's style): newest first, `limit`, `starting_after`, `ending_before`.

Ids are time-ordered, so the cursor is an object id. Response:
`{"object": "list", "url": "/v1/payments", "has_more": bool, "data": [...]}`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import Model, QuerySet
from rest_framework.request import Request

from config.platform.http.problems import ValidationProblem

DEFAULT_LIMIT = 10
MAX_LIMIT = 100
#: The query parameters `paginate` reads (list endpoints declare them, plus their own filters).
PAGING_PARAMS = frozenset({"limit", "starting_after", "ending_before"})


def paginate(request: Request, queryset: QuerySet[Any], render: Callable[[Model], dict[str, Any]]) -> dict[str, Any]:
    """Return one page of `queryset` (newest first by id) rendered with `render`.

    Query parameters: `limit` (1–100, default 10), `starting_after` (id: the page after it, older objects) or
    `ending_before` (id: the page before it, newer objects). Raises ValidationProblem for bad parameters.
    """
    params = request.query_params
    errors = []
    try:
        limit = int(params.get("limit", DEFAULT_LIMIT))
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError
    except ValueError:
        errors.append({"field": "limit", "code": "invalid", "detail": f"limit must be an integer 1–{MAX_LIMIT}."})
        limit = DEFAULT_LIMIT
    after, before = params.get("starting_after"), params.get("ending_before")
    if after and before:
        errors.append(
            {"field": "starting_after", "code": "invalid", "detail": "Use starting_after or ending_before, not both."}
        )
    if errors:
        raise ValidationProblem(errors)
    if before:
        rows = list(queryset.filter(pk__gt=before).order_by("pk")[: limit + 1])
        has_more = len(rows) > limit
        rows = list(reversed(rows[:limit]))
    else:
        qs = queryset.filter(pk__lt=after) if after else queryset
        rows = list(qs.order_by("-pk")[: limit + 1])
        has_more = len(rows) > limit
        rows = rows[:limit]
    return {"object": "list", "url": request.path, "has_more": has_more, "data": [render(r) for r in rows]}
