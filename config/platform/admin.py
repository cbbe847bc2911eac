"""The admin kit every app's admin uses: read-only pages, links between objects, and staff action pages.

A staff action page takes a typed reason (and any other fields of its form), calls a use case that owns its
transaction and writes the audit record, and goes back to the object's page; a domain error is shown on the form
and nothing changes. Its template is templates/admin/staff_action.html.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from config.platform.actors import Actor
from config.platform.errors import DomainError


class ReadOnlyAdmin(admin.ModelAdmin):
    """A ModelAdmin that can only view (no add, change or delete, whatever the user's permissions)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    """An inline that only shows rows."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def admin_link(obj: Any, text: Any = None) -> str:
    """An HTML link to `obj`'s admin page (its change/view page)."""
    return admin_link_to(obj._meta.app_label, obj._meta.model_name, obj.pk, text)


def admin_link_to(app_label: str, model_name: str, pk: Any, text: Any = None) -> str:
    """An HTML link to the admin page of row `pk` of `app_label.model_name`, for rows known only by id (another
    app's contracts, e.g. a ledger transaction record)."""
    url = reverse(f"admin:{app_label}_{model_name}_change", args=[pk])
    return format_html('<a href="{}">{}</a>', url, text if text is not None else pk)


class ReasonForm(forms.Form):
    """A typed reason, kept in the audit trail with the staff user's name."""

    reason = forms.CharField(
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        help_text="Required. Kept in the audit trail with your name.",
    )


@dataclass(frozen=True)
class StaffAction:
    """A button on an object's page: label and URL."""

    label: str
    url: str


def staff_action_view(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    obj: Any,
    *,
    permission: str,
    title: str,
    form_class: type[forms.Form],
    perform: Callable[[Actor, dict[str, Any]], str],
    intro: str = "",
    domain_errors: tuple[type[Exception], ...] = (DomainError,),
) -> HttpResponse:
    """Render and handle a staff action page: 403 without `permission`; on a valid POST call `perform(actor,
    cleaned_data)` (a use case that owns its transaction and returns the success message) and go back to the
    object's page. A form error or one of `domain_errors` is shown on the form (status 400): nothing changed."""
    if not request.user.has_perm(permission):
        raise PermissionDenied
    form = form_class(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                message = perform(Actor.from_user(request.user), form.cleaned_data)
            except domain_errors as exc:
                form.add_error(None, getattr(exc, "detail", None) or str(exc))
            else:
                model_admin.message_user(request, message, messages.SUCCESS)
                opts = obj._meta
                return HttpResponseRedirect(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]))
        status = 400
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "intro": intro,
        "form": form,
        "object": obj,
        "opts": obj._meta,
        "object_url": reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk]),
    }
    return TemplateResponse(request, "admin/staff_action.html", context, status=status)
