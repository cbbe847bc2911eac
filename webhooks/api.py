"""Webhook endpoint API: `POST /v1/webhook_endpoints`, `GET /v1/webhook_endpoints[/{id}]`."""

from __future__ import annotations

from typing import Any

from django.urls import path
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from payments.api.fields import StrictSerializer
from payments.api.idempotency import idempotent
from payments.api.pagination import paginate
from payments.api.problems import ValidationProblem
from payments.errors import NotFound
from payments.representations import iso
from webhooks import services
from webhooks.models import WebhookEndpoint


class EndpointCreateSerializer(StrictSerializer):
    """Body of `POST /v1/webhook_endpoints`."""

    url = serializers.URLField(max_length=2048)
    enabled_events = serializers.ListField(child=serializers.CharField(max_length=64), allow_empty=False)
    description = serializers.CharField(required=False, allow_blank=True, max_length=255, default="")


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


class EndpointListCreateView(APIView):
    """Create (201, with the `whsec_…` signing secret shown this once) and list webhook endpoints."""

    @idempotent
    def post(self, request: Request) -> Response:
        """Errors: 400 `validation_error` (bad URL, unknown event type, private address in production)."""
        serializer = EndpointCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            endpoint = services.endpoint_create(
                merchant=request.user.merchant,
                mode=request.user.mode,
                url=data["url"],
                enabled_events=data["enabled_events"],
                description=data["description"],
            )
        except services.EndpointInvalid as exc:
            raise ValidationProblem([{"field": exc.field, "code": "invalid", "detail": str(exc)}]) from exc
        return Response(endpoint_to_dict(endpoint, with_secret=True), status=201)

    def get(self, request: Request) -> Response:
        """List the merchant's endpoints, newest first (cursor paging)."""
        qs = WebhookEndpoint.objects.filter(merchant=request.user.merchant, mode=request.user.mode)
        return Response(paginate(request, qs, endpoint_to_dict))


class EndpointDetailView(APIView):
    """`GET /v1/webhook_endpoints/{id}` (without the secret); 404 for other merchants' endpoints."""

    def get(self, request: Request, endpoint_id: str) -> Response:
        endpoint = WebhookEndpoint.objects.filter(
            pk=endpoint_id, merchant=request.user.merchant, mode=request.user.mode
        ).first()
        if endpoint is None:
            raise NotFound(f"No such webhook endpoint: {endpoint_id}", param="id")
        return Response(endpoint_to_dict(endpoint))


urlpatterns = [
    path("webhook_endpoints", EndpointListCreateView.as_view(), name="webhook-endpoint-list"),
    path("webhook_endpoints/<str:endpoint_id>", EndpointDetailView.as_view(), name="webhook-endpoint-detail"),
]
