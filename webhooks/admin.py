"""Read-only admin for webhook endpoints, deliveries and their attempts."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from payments.admin import ReadOnlyAdmin
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReadOnlyAdmin):
    """Endpoints (the signing secret is not shown)."""

    list_display = ("id", "merchant", "url", "enabled", "created_at")
    exclude = ("secret",)
    search_fields = ("id", "url", "merchant__id")


class AttemptInline(admin.TabularInline):
    """Every HTTP attempt of a delivery."""

    model = WebhookAttempt
    fields = ("attempted_at", "response_status", "error", "duration_ms", "succeeded")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    """Deliveries with their attempts."""

    list_display = ("id", "event", "endpoint", "status", "attempts", "created_at", "delivered_at")
    list_filter = ("status",)
    search_fields = ("id", "event__id", "event__payment__id")
    inlines = [AttemptInline]
