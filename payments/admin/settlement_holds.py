"""The settlement hold queue and the audit trail in the admin (both read-only)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from config.platform.admin import ReadOnlyAdmin, admin_link
from payments.models import AuditRecord, SettlementHold, SettlementHoldStatus


class SettlementHoldStatusFilter(admin.SimpleListFilter):
    """Hold status, showing the queue (`active`) unless another choice is made."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        """Each hold status, and all."""
        return [(s.value, s.label) for s in SettlementHoldStatus] + [("all", "All")]

    def choices(self, changelist: Any) -> Any:
        """The choices, with `active` selected when nothing is chosen."""
        for lookup, title in self.lookup_choices:
            yield {
                "selected": (self.value() or SettlementHoldStatus.ACTIVE) == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request: HttpRequest, queryset: QuerySet[SettlementHold]) -> QuerySet[SettlementHold]:
        """Holds of the chosen status (`active` by default; `all` for every hold)."""
        value = self.value() or SettlementHoldStatus.ACTIVE
        return queryset if value == "all" else queryset.filter(status=value)


@admin.register(SettlementHold)
class SettlementHoldAdmin(ReadOnlyAdmin):
    """The hold queue: active holds, newest first, with the payment, its score and the rules that fired.
    Release or void from the payment's page."""

    list_display = (
        "id",
        "payment_link",
        "amount",
        "payment_status",
        "status",
        "source",
        "reason",
        "rules",
        "created_at",
    )
    list_filter = (SettlementHoldStatusFilter, "source", "reason")
    search_fields = ("=id", "=payment__id", "=payment__psp_reference")
    ordering = ("-created_at",)
    readonly_fields = ("rules",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[SettlementHold]:
        """Holds with their payment (one query for the queue)."""
        return super().get_queryset(request).select_related("payment")

    @admin.display(description="Payment")
    def payment_link(self, obj: SettlementHold) -> str:
        """A link to the held payment's page."""
        return admin_link(obj.payment)

    @admin.display(description="Amount (minor units)")
    def amount(self, obj: SettlementHold) -> str:
        """The payment's amount in minor units and its currency."""
        return f"{obj.payment.amount} {obj.payment.currency}"

    @admin.display(description="Payment status")
    def payment_status(self, obj: SettlementHold) -> str:
        """The payment's current status."""
        return obj.payment.status

    @admin.display(description="Rules that fired")
    def rules(self, obj: SettlementHold) -> str:
        """The score and each fired rule with its contribution and detail, from the hold's evidence."""
        fired = obj.details.get("rules") or []
        score = obj.details.get("score")
        text = "; ".join(f"{r.get('rule')} +{r.get('contribution')} ({r.get('detail')})" for r in fired)
        return f"score {score}: {text}" if score is not None else (text or obj.note)


@admin.register(AuditRecord)
class AuditRecordAdmin(ReadOnlyAdmin):
    """Everything staff did, who did it and why (append-only)."""

    list_display = ("id", "created_at", "actor", "action", "object_type", "object_id", "payment", "reason")
    list_filter = ("action", "object_type", "actor")
    search_fields = ("=object_id", "=payment__id", "actor", "reason")
    date_hierarchy = "created_at"
