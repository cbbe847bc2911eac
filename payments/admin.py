"""Admin pages for payments (read-only for now): merchants, payments with their events, outbox rows.

Operator actions (void, release hold) and permissions come with the operators' issue; they will call the same
services as the API.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from payments.models import ApiKey, Event, Merchant, OutboxMessage, Payment


class ReadOnlyAdmin(admin.ModelAdmin):
    """A ModelAdmin that can only view."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ApiKeyInline(admin.TabularInline):
    """A merchant's keys: prefix, mode, dates; never the key itself (only its hash is stored)."""

    model = ApiKey
    fields = ("prefix", "mode", "created_at", "revoked_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Merchant)
class MerchantAdmin(ReadOnlyAdmin):
    """Merchants and their API keys."""

    list_display = ("id", "name", "created_at")
    search_fields = ("id", "name")
    inlines = [ApiKeyInline]


class EventInline(admin.TabularInline):
    """A payment's events, oldest first."""

    model = Event
    fields = ("id", "type", "request_id", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("id",)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    """Payments: filter by status, merchant, currency, date; search by id and PSP reference."""

    list_display = ("id", "merchant", "status", "amount", "currency", "capture_method", "psp_reference", "created_at")
    list_filter = ("status", "currency", "capture_method", "mode", "created_at")
    search_fields = ("id", "psp_reference", "merchant__id", "merchant__name")
    date_hierarchy = "created_at"
    inlines = [EventInline]


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdmin):
    """Outbox rows: pending work, done work and dead letters."""

    list_display = ("id", "topic", "subscriber", "key", "status", "attempts", "available_at", "created_at")
    list_filter = ("status", "subscriber", "topic")
    search_fields = ("key",)


# API keys: create (secret shown once) and revoke (issue 4).
from payments import admin_keys  # noqa: E402, F401
