"""Read-only admin for webhook endpoints, deliveries and their attempts, and the payment page's panel of
webhook delivery attempts."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from config.platform.admin import ReadOnlyAdmin, ReadOnlyInline, admin_link
from payments.panels import Panel, register_payment_panel
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReadOnlyAdmin):
    """Endpoints (the signing secret is not shown)."""

    list_display = ("id", "merchant", "url", "enabled", "created_at")
    exclude = ("secret",)
    search_fields = ("id", "url", "merchant__id")


class AttemptInline(ReadOnlyInline):
    """Every HTTP attempt of a delivery."""

    model = WebhookAttempt
    fields = ("attempted_at", "response_status", "error", "duration_ms", "succeeded")
    readonly_fields = fields


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    """Deliveries with their attempts."""

    list_display = ("id", "event", "endpoint", "status", "attempts", "created_at", "delivered_at")
    list_filter = ("status",)
    search_fields = ("id", "event__id", "event__payment__id")
    inlines = [AttemptInline]


@register_payment_panel
def webhook_attempts_panel(request: HttpRequest, payment_id: str) -> Panel | None:
    """Every delivery attempt of the payment's events: event, endpoint, when, HTTP status or error, duration."""
    if not request.user.has_perm("webhooks.view_webhookattempt"):
        return None
    attempts = (
        WebhookAttempt.objects.filter(delivery__event__payment_id=payment_id)
        .select_related("delivery__event", "delivery__endpoint")
        .order_by("attempted_at", "id")
    )
    rows = [
        [
            admin_link(a.delivery),
            a.delivery.event.type,
            a.delivery.endpoint.url,
            a.attempted_at,
            a.response_status or "—",
            a.error or "",
            f"{a.duration_ms} ms",
            "yes" if a.succeeded else "no",
        ]
        for a in attempts
    ]
    return Panel(
        title="Webhook delivery attempts",
        columns=["Delivery", "Event", "Endpoint", "At", "HTTP status", "Error", "Duration", "Succeeded"],
        rows=rows,
        order=50,
    )
