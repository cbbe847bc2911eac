"""Admin for reconciliation: runs and settlements (read-only), discrepancies (read-only, resolvable with an
audited note by users with `reconciliation.resolve_discrepancy`), and the payment page's settlement panel.
Nothing here is ever deleted."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, path, reverse

from config.platform.actors import Actor
from config.platform.admin import ReadOnlyAdmin, ReasonForm, StaffAction, admin_link, staff_action_view
from config.platform.errors import DomainError
from payments.panels import Panel, register_payment_panel
from reconciliation.discrepancies import discrepancy_resolve
from reconciliation.errors import ReconciliationError
from reconciliation.models import Discrepancy, DiscrepancyStatus, ReconciliationRun, Settlement


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(ReadOnlyAdmin):
    """Runs: one per distinct report of a processor and day, with what they settled and found."""

    list_display = ("id", "processor", "report_date", "source", "row_count", "settled", "open", "created_at")
    list_filter = ("processor", "report_date")
    exclude = ("report",)
    readonly_fields = ("report_text",)
    date_hierarchy = "report_date"

    def get_queryset(self, request: HttpRequest) -> QuerySet[ReconciliationRun]:
        """Runs with their counts of settled rows and still-open discrepancies."""
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_settled=Count("settlements", distinct=True),
                n_open=Count("discrepancies", filter=Q(discrepancies__status=DiscrepancyStatus.OPEN), distinct=True),
            )
        )

    @admin.display(description="Settled rows", ordering="n_settled")
    def settled(self, obj: ReconciliationRun) -> int:
        """How many rows this run settled."""
        return getattr(obj, "n_settled", 0)

    @admin.display(description="Open discrepancies first found", ordering="n_open")
    def open(self, obj: ReconciliationRun) -> int:
        """How many discrepancies this run first found are still open."""
        return getattr(obj, "n_open", 0)

    @admin.display(description="Report")
    def report_text(self, obj: ReconciliationRun) -> str:
        """The report as received."""
        return bytes(obj.report).decode("utf-8", "replace")


@admin.register(Settlement)
class SettlementAdmin(ReadOnlyAdmin):
    """What was settled from which report row (amounts in minor units) and its ledger transaction."""

    list_display = (
        "id",
        "kind",
        "report_date",
        "payment",
        "modification_reference",
        "gross_amount",
        "fees",
        "currency",
        "ledger_transaction_id",
    )
    list_filter = ("kind", "processor", "report_date", "currency")
    search_fields = ("=payment__id", "=psp_reference", "=modification_reference")


@admin.register(Discrepancy)
class DiscrepancyAdmin(ReadOnlyAdmin):
    """Discrepancies with the amounts on each side (minor units). Open ones can be resolved with a note."""

    list_display = (
        "id",
        "report_date",
        "kind",
        "status",
        "payment",
        "psp_reference",
        "report_amount",
        "report_currency",
        "our_amount",
        "our_currency",
        "our_status",
        "detail",
    )
    list_filter = ("status", "kind", "processor", "report_date")
    search_fields = ("=payment__id", "=psp_reference", "=modification_reference", "key")
    date_hierarchy = "report_date"

    def get_urls(self) -> list[URLPattern]:
        """The admin URLs plus `resolve/`."""
        wrap = self.admin_site.admin_view
        return [
            path("<path:object_id>/resolve/", wrap(self.resolve_view), name="reconciliation_discrepancy_resolve"),
            *super().get_urls(),
        ]

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """The read-only page, with a Resolve button for open discrepancies and users who may resolve them."""
        obj = self.get_object(request, unquote(object_id))
        extra = dict(extra_context or {})
        if (
            obj is not None
            and obj.status == DiscrepancyStatus.OPEN
            and request.user.has_perm("reconciliation.resolve_discrepancy")
        ):
            extra["staff_actions"] = [
                StaffAction("Resolve", reverse("admin:reconciliation_discrepancy_resolve", args=[obj.pk]))
            ]
        return super().change_view(request, object_id, form_url, extra_context=extra)

    def resolve_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Resolve with a note (`reconciliation.resolve_discrepancy`; audited by discrepancies.discrepancy_resolve)."""
        if not request.user.has_perm("reconciliation.resolve_discrepancy"):
            raise PermissionDenied
        obj = self.get_object(request, unquote(object_id))
        if obj is None or not self.has_view_permission(request, obj):
            raise Http404("No such discrepancy.")

        def perform(actor: Actor, data: dict[str, Any]) -> str:
            discrepancy_resolve(discrepancy_id=obj.pk, actor=actor, note=data["reason"])
            return f"Discrepancy #{obj.pk} is resolved."

        return staff_action_view(
            self,
            request,
            obj,
            permission="reconciliation.resolve_discrepancy",
            title=f"Resolve discrepancy #{obj.pk}",
            form_class=ReasonForm,
            perform=perform,
            intro=f"{obj.get_kind_display()}: {obj.detail}",
            domain_errors=(DomainError, ReconciliationError),
        )


@register_payment_panel
def settlement_panel(request: HttpRequest, payment_id: str) -> Panel | None:
    """The payment page's settlement rows and reconciliation discrepancies."""
    if not request.user.has_perm("reconciliation.view_settlement"):
        return None
    rows: list[list[Any]] = [
        [admin_link(s, f"settlement #{s.pk}"), s.report_date, s.kind, f"{s.gross_amount} {s.currency}", s.fees, ""]
        for s in Settlement.objects.filter(payment_id=payment_id).order_by("id")
    ]
    if request.user.has_perm("reconciliation.view_discrepancy"):
        rows += [
            [admin_link(d, f"discrepancy #{d.pk}"), d.report_date, d.kind, d.report_amount, "", d.status]
            for d in Discrepancy.objects.filter(payment_id=payment_id).order_by("id")
        ]
    return Panel(
        title="Settlement",
        columns=["Record", "Report date", "Kind", "Gross (minor units)", "Fees", "Discrepancy status"],
        rows=rows,
        empty="Not settled yet.",
        order=60,
    )
