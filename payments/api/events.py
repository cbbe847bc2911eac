"""Event endpoints: `GET /v1/events` (newest first, cursor paging, filter by type) and `GET /v1/events/{id}`.

They let a merchant re-fetch anything its webhook endpoint missed: the same event objects webhooks deliver.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from config.platform.http import openapi as shared_openapi
from config.platform.http.base import MerchantAPIView
from config.platform.http.pagination import PAGING_PARAMS, paginate
from config.platform.http.problems import ValidationProblem
from payments import selectors
from payments.api import openapi
from payments.events import PUBLIC_EVENT_TYPES, event_record, event_record_to_dict
from payments.models import Event


def _event_to_dict(event: Event) -> dict[str, Any]:
    return event_record_to_dict(event_record(event))


def _type_filter(value: str | None) -> str | None:
    """Validate the `type` filter: a public event type, or a family such as `payment.*` / `refund.*`."""
    if value is None:
        return None
    families = {t.split(".", 1)[0] + ".*" for t in PUBLIC_EVENT_TYPES}
    if value not in PUBLIC_EVENT_TYPES and value not in families:
        raise ValidationProblem(
            [
                {
                    "field": "type",
                    "code": "invalid",
                    "detail": "Must be an event type (payment.captured) or a family (payment.*, refund.*).",
                }
            ]
        )
    return value


class EventListView(MerchantAPIView):
    """`GET /v1/events`: the merchant's events in the key's mode, newest first."""

    query_params = {"GET": PAGING_PARAMS | {"type"}}

    @extend_schema(
        operation_id="events_list",
        summary="List events",
        tags=["Events"],
        parameters=[
            *shared_openapi.paging_parameters(),
            OpenApiParameter(
                "type",
                {
                    "type": "string",
                    "enum": sorted(PUBLIC_EVENT_TYPES) + sorted({t.split(".")[0] + ".*" for t in PUBLIC_EVENT_TYPES}),
                },
                description="Only events of this type, or of this family (`payment.*`, `refund.*`).",
            ),
        ],
        responses={
            200: OpenApiResponse(openapi.EventListSerializer, description="A page of events."),
            **shared_openapi.problems(*shared_openapi.READ_PROBLEMS),
        },
    )
    def get(self, request: Request) -> Response:
        """List events newest first (cursor paging), optionally only one `type` or family.
        Errors: 400 `validation_error` (bad `type`, `limit`…); 401; 429."""
        event_type = _type_filter(request.query_params.get("type"))
        qs = selectors.event_list(merchant=request.user.merchant, mode=request.user.mode, type=event_type)
        return Response(paginate(request, qs, _event_to_dict))


class EventDetailView(MerchantAPIView):
    """`GET /v1/events/{id}`: one event; 404 for unknown ids and other merchants' events."""

    @extend_schema(
        operation_id="events_retrieve",
        summary="Retrieve an event",
        tags=["Events"],
        parameters=[OpenApiParameter("event_id", str, OpenApiParameter.PATH, description="The event's id (`evt_…`).")],
        responses={
            200: OpenApiResponse(openapi.EventSerializer, description="The event."),
            **shared_openapi.problems(*shared_openapi.READ_PROBLEMS, 404),
        },
    )
    def get(self, request: Request, event_id: str) -> Response:
        """One event. Errors: 401; 404 `not_found` (also for another merchant's or mode's event); 429."""
        event = selectors.event_get(merchant=request.user.merchant, mode=request.user.mode, event_id=event_id)
        return Response(_event_to_dict(event))
