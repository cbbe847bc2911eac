"""Webhook endpoint API: `POST /v1/webhook_endpoints`, `GET /v1/webhook_endpoints[/{id}]`."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from django.urls import path
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from config.platform.http import openapi
from config.platform.http.base import MerchantAPIView
from config.platform.http.fields import StrictSerializer
from config.platform.http.pagination import PAGING_PARAMS, paginate
from config.platform.http.problems import ValidationProblem
from config.platform.http.rendering import iso
from config.platform.idempotency.execution import Resource, execute
from payments.events import PUBLIC_EVENT_TYPES
from webhooks import selectors, services
from webhooks.models import WebhookEndpoint

_EVENT_CHOICES = ["*", *sorted(PUBLIC_EVENT_TYPES)]


@extend_schema_field(
    {"type": "array", "minItems": 1, "items": {"type": "string", "enum": _EVENT_CHOICES}, "example": ["*"]}
)
class EnabledEventsField(serializers.ListField):
    """`enabled_events`: event types (checked by webhooks.services.endpoint_create) or `*`."""


class EndpointCreateSerializer(StrictSerializer):
    """Body of `POST /v1/webhook_endpoints`."""

    url = serializers.URLField(max_length=2048, help_text="Where to POST events (https in production).")
    enabled_events = EnabledEventsField(
        child=serializers.CharField(max_length=64),
        allow_empty=False,
        help_text="Event types to receive, or `*` for all.",
    )
    description = serializers.CharField(
        required=False, allow_blank=True, max_length=255, default="", help_text="A note for yourself."
    )


class EndpointSerializer(serializers.Serializer):
    """A webhook endpoint (documentation of `endpoint_to_dict`)."""

    id = serializers.CharField(help_text="`we_…`")
    object = serializers.ChoiceField(choices=["webhook_endpoint"])
    url = serializers.CharField(help_text="Where events are POSTed.")
    description = serializers.CharField(allow_blank=True, help_text="Your note.")
    enabled_events = serializers.ListField(
        child=serializers.ChoiceField(choices=_EVENT_CHOICES), help_text="The event types it receives (`*`: all)."
    )
    status = serializers.ChoiceField(choices=["enabled", "disabled"], help_text="Disabled endpoints receive nothing.")
    livemode = serializers.BooleanField(help_text="True for live-mode endpoints.")
    created = serializers.DateTimeField(help_text="When it was created (ISO 8601, UTC).")


class EndpointWithSecretSerializer(EndpointSerializer):
    """A webhook endpoint as created: with its signing secret, shown only in this response."""

    secret = serializers.CharField(help_text="`whsec_…`: verify signatures with it (Standard Webhooks).")


EndpointListSerializer = openapi.list_of(EndpointSerializer, "EndpointListSerializer")


def endpoint_to_dict(endpoint: WebhookEndpoint, *, with_secret: bool = False) -> dict[str, Any]:
    """An endpoint as the API shows it; `secret` only in the creation response."""
    body: dict[str, Any] = {
        "id": endpoint.id,
        "object": "webhook_endpoint",
        "url": endpoint.url,
        "description": endpoint.description,
        "enabled_events": endpoint.enabled_events,
        "status": "enabled" if endpoint.enabled else "disabled",
        "livemode": endpoint.mode == "live",
        "created": iso(endpoint.created_at),
    }
    if with_secret:
        body["secret"] = endpoint.secret
    return body


ENDPOINT = Resource(
    type="webhook_endpoint",
    load=lambda endpoint_id: WebhookEndpoint.objects.get(pk=endpoint_id),
    render=lambda endpoint: endpoint_to_dict(endpoint, with_secret=True),
    in_flight=lambda endpoint: False,
)


class EndpointListCreateView(MerchantAPIView):
    """Create (201, with the `whsec_…` signing secret shown this once) and list webhook endpoints."""

    query_params = {"GET": PAGING_PARAMS}

    @extend_schema(
        operation_id="webhook_endpoints_create",
        summary="Create a webhook endpoint",
        tags=["Webhooks"],
        request=EndpointCreateSerializer,
        parameters=[openapi.IDEMPOTENCY_KEY],
        examples=[
            OpenApiExample(
                "all events",
                request_only=True,
                value={"url": "https://example.com/hooks", "enabled_events": ["*"]},
            )
        ],
        responses={
            201: OpenApiResponse(
                EndpointWithSecretSerializer,
                description="Created; keep the secret now.",
                examples=[
                    OpenApiExample(
                        "created",
                        response_only=True,
                        status_codes=["201"],
                        value={
                            "id": "we_01jd3p0a1b2c3d4e5f6g7h8j9k",
                            "object": "webhook_endpoint",
                            "url": "https://example.com/hooks",
                            "description": "",
                            "enabled_events": ["*"],
                            "status": "enabled",
                            "livemode": False,
                            "created": "2026-11-20T12:00:00.000000Z",
                            "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                        },
                    )
                ],
            ),
            **openapi.problems(*openapi.WRITE_PROBLEMS),
        },
    )
    def post(self, request: Request) -> HttpResponse:
        """Errors: 400 `validation_error` (bad URL, unknown event type, private address in production); 401; 409;
        413; 415; 422; 429."""

        def perform(data: dict[str, Any]) -> WebhookEndpoint:
            try:
                return services.endpoint_create(
                    merchant=request.user.merchant,
                    mode=request.user.mode,
                    url=data["url"],
                    enabled_events=data["enabled_events"],
                    description=data["description"],
                )
            except services.EndpointInvalid as exc:
                raise ValidationProblem([{"field": exc.field, "code": "invalid", "detail": str(exc)}]) from exc

        return execute(
            request,
            serializer_class=EndpointCreateSerializer,
            perform=perform,
            resource=ENDPOINT,
            done_status=201,
        )

    @extend_schema(
        operation_id="webhook_endpoints_list",
        summary="List webhook endpoints",
        tags=["Webhooks"],
        parameters=openapi.paging_parameters(),
        responses={
            200: OpenApiResponse(EndpointListSerializer, description="A page of endpoints."),
            **openapi.problems(*openapi.READ_PROBLEMS),
        },
    )
    def get(self, request: Request) -> Response:
        """List the merchant's endpoints, newest first (cursor paging). Errors: 400; 401; 429."""
        qs = selectors.endpoint_list(merchant=request.user.merchant, mode=request.user.mode)
        return Response(paginate(request, qs, endpoint_to_dict))


class EndpointDetailView(MerchantAPIView):
    """`GET /v1/webhook_endpoints/{id}` (without the secret); 404 for other merchants' endpoints."""

    @extend_schema(
        operation_id="webhook_endpoints_retrieve",
        summary="Retrieve a webhook endpoint",
        tags=["Webhooks"],
        parameters=[OpenApiParameter("endpoint_id", str, OpenApiParameter.PATH, description="`we_…`")],
        responses={
            200: OpenApiResponse(EndpointSerializer, description="The endpoint."),
            **openapi.problems(*openapi.READ_PROBLEMS, 404),
        },
    )
    def get(self, request: Request, endpoint_id: str) -> Response:
        """One endpoint (no secret). Errors: 401; 404 `not_found`; 429."""
        endpoint = selectors.endpoint_get(
            merchant=request.user.merchant, mode=request.user.mode, endpoint_id=endpoint_id
        )
        return Response(endpoint_to_dict(endpoint))


urlpatterns = [
    path("webhook_endpoints", EndpointListCreateView.as_view(), name="webhook-endpoint-list"),
    path("webhook_endpoints/<str:endpoint_id>", EndpointDetailView.as_view(), name="webhook-endpoint-detail"),
]
