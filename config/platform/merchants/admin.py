"""Admin for merchants and API keys: merchants with their keys; list and search keys, create one (the secret is
shown once, in a message), revoke them.

Creation and revocation go through config.platform.merchants.services (api_key_create, api_key_revoke), like the
management commands; the admin never sees or stores a plaintext key after the creating request.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from config.platform.admin import ReadOnlyAdmin, ReadOnlyInline
from config.platform.merchants import services
from config.platform.merchants.errors import TooManyApiKeys
from config.platform.merchants.models import ApiKey, Merchant


class ApiKeyCreateForm(forms.ModelForm):
    """The add form: only the merchant and the mode; the key itself is generated."""

    class Meta:
        model = ApiKey
        fields = ("merchant", "mode")


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """API keys: prefix, merchant, mode, slot, dates. Add creates a key; the action revokes keys."""

    list_display = ("id", "prefix", "merchant", "mode", "slot", "created_at", "revoked_at")
    list_filter = ("mode", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("id", "prefix", "merchant__id", "merchant__name")
    readonly_fields = ("id", "prefix", "merchant", "mode", "slot", "created_at", "revoked_at")
    actions = ["revoke_selected"]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        """The add form asks only for merchant and mode; existing keys are shown read-only."""
        if obj is None:
            kwargs["form"] = ApiKeyCreateForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        """Everything is read-only on an existing key."""
        return self.readonly_fields if obj is not None else ()

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Keys are never edited (revoke and create instead)."""
        return False if obj is not None else super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Keys are never deleted, only revoked (their rows stay for the audit)."""
        return False

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        """Create the key through the service and show its secret once (two active keys per mode at most)."""
        try:
            key, raw = services.api_key_create(merchant=obj.merchant, mode=obj.mode)
        except TooManyApiKeys as exc:
            messages.error(request, str(exc))
            raise _Refused from exc
        obj.pk, obj.prefix, obj.slot, obj.key_hash = key.pk, key.prefix, key.slot, key.key_hash
        obj._state.adding = False
        messages.warning(request, f"New {key.mode} key for {key.merchant_id} (shown only now): {raw}")

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: Any = None) -> Any:
        """The add page; when the service refuses (two active keys already), back to the list with the error."""
        try:
            return super().add_view(request, form_url, extra_context)
        except _Refused:
            from django.shortcuts import redirect

            return redirect("admin:merchants_apikey_changelist")

    @admin.action(description="Revoke selected API keys")
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        """Revoke each selected key through config.platform.merchants.services.api_key_revoke."""
        for key in queryset:
            services.api_key_revoke(key_id=key.pk)
        self.message_user(request, f"Revoked {queryset.count()} key(s).", messages.SUCCESS)


class _Refused(Exception):
    """The service refused to create a key; the admin shows the error and returns to the list."""


class ApiKeyInline(ReadOnlyInline):
    """A merchant's keys: prefix, mode, dates; never the key itself (only its hash is stored)."""

    model = ApiKey
    fields = ("prefix", "mode", "created_at", "revoked_at")
    readonly_fields = fields


@admin.register(Merchant)
class MerchantAdmin(ReadOnlyAdmin):
    """Merchants and their API keys."""

    list_display = ("id", "name", "created_at")
    search_fields = ("id", "name")
    inlines = [ApiKeyInline]
