"""The payment's admin page: list, filters, search, every related record as a panel, and the staff actions.

The page renders the panels of this module (ledger entries, holds, outbox rows, audit trail) and those other apps
register through payments.panels (fraud result, webhook deliveries, settlement).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q, QuerySet, TextField
from django.db.models.functions import Cast
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, path, reverse

from config.platform.actors import Actor
from config.platform.admin import (
    ReadOnlyAdmin,
    ReadOnlyInline,
    ReasonForm,
    StaffAction,
    admin_link,
    admin_link_to,
    staff_action_view,
)
from config.platform.outbox.models import OutboxMessage
from ledger import selectors as ledger_selectors
from payments import staff
from payments.ledger_refs import payment_reference
from payments.models import AuditRecord, Event, Payment, PaymentStatus, SettlementHold, SettlementHoldStatus
from payments.panels import Panel, payment_panels, register_payment_panel


@register_payment_panel
def ledger_panel(request: HttpRequest, payment_id: str) -> Panel | None:
    """The payment's ledger transactions and each of their entries (amounts in minor units)."""
    if not request.user.has_perm("ledger.view_ledgertransaction"):
        return None
    rows = []
    for txn in ledger_selectors.transactions_for_reference(reference=payment_reference(payment_id)):
        for entry in txn.entries:
            rows.append(
                [
                    admin_link_to("ledger", "ledgertransaction", txn.id, f"#{txn.id}"),
                    txn.code,
                    txn.kind,
                    f"{entry.account.owner} {entry.account.purpose}",
                    entry.side,
                    "pending" if entry.pending else "posted",
                    f"{entry.amount} {entry.currency}",
                    txn.created_at,
                ]
            )
    return Panel(
        title="Ledger entries",
        columns=["Ledger transaction", "Code", "Kind", "Account", "Side", "Phase", "Amount (minor units)", "At"],
        rows=rows,
        order=10,
    )


@register_payment_panel
def settlement_holds_panel(request: HttpRequest, payment_id: str) -> Panel | None:
    """The payment's settlement holds (fraud review and others)."""
    if not request.user.has_perm("payments.view_settlementhold"):
        return None
    rows = [
        [admin_link(h), h.status, h.source, h.reason, h.note, h.created_at, h.ended_by, h.end_reason]
        for h in SettlementHold.objects.filter(payment_id=payment_id).order_by("created_at")
    ]
    return Panel(
        title="Settlement holds",
        columns=["Hold", "Status", "Source", "Reason", "Note", "Placed", "Ended by", "Why"],
        rows=rows,
        order=20,
    )


@register_payment_panel
def outbox_panel(request: HttpRequest, payment_id: str) -> Panel | None:
    """The outbox rows keyed by the payment (its work and its events' deliveries to subscribers)."""
    if not request.user.has_perm("outbox.view_outboxmessage"):
        return None
    rows = [
        [admin_link(m, f"#{m.pk}"), m.topic, m.subscriber, m.status, m.attempts, m.last_error[:120], m.created_at]
        for m in OutboxMessage.objects.filter(key=payment_id).order_by("id")
    ]
    return Panel(
        title="Outbox messages",
        columns=["Message", "Topic", "Subscriber", "Status", "Attempts", "Last error", "Created"],
        rows=rows,
        order=40,
    )


@register_payment_panel
def audit_panel(request: HttpRequest, payment_id: str) -> Panel | None:
    """What staff did to the payment, with who and why."""
    if not request.user.has_perm("payments.view_auditrecord"):
        return None
    rows = [
        [r.created_at, r.actor, r.action, r.reason]
        for r in AuditRecord.objects.filter(payment_id=payment_id).order_by("id")
    ]
    return Panel(title="Audit trail", columns=["At", "Staff user", "Action", "Reason"], rows=rows, order=90)


class EventInline(ReadOnlyInline):
    """A payment's events, oldest first."""

    model = Event
    fields = ("id", "type", "request_id", "created_at")
    readonly_fields = fields
    ordering = ("id",)


class SettlementHoldFilter(admin.SimpleListFilter):
    """Payments by settlement hold: held now (an active hold), ever held, never held."""

    title = "hold"
    parameter_name = "hold"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        """On hold, ever held, never held."""
        return [("active", "On hold"), ("any", "Ever held"), ("none", "Never held")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Payment]) -> QuerySet[Payment]:
        """Payments with an active hold / any hold / none, by the chosen value."""
        active = Exists(SettlementHold.objects.filter(payment=OuterRef("pk"), status=SettlementHoldStatus.ACTIVE))
        any_hold = Exists(SettlementHold.objects.filter(payment=OuterRef("pk")))
        if self.value() == "active":
            return queryset.filter(active)
        if self.value() == "any":
            return queryset.filter(any_hold)
        if self.value() == "none":
            return queryset.exclude(any_hold)
        return queryset


class VoidForm(ReasonForm):
    """A void: the reason code merchants see (as in the API) and the typed reason for the audit trail."""

    void_reason = forms.ChoiceField(
        choices=[("", "—"), *((r, r) for r in staff.VOID_REASONS)], required=False, label="Void reason (API code)"
    )


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    """Payments: filter by status, merchant, currency, date and hold; search by id, PSP reference (authorization
    or capture) and merchant reference (description or any metadata value, e.g. an order id).

    The detail page shows the events, ledger entries, holds, outbox rows and every panel other apps register
    (fraud result and fired rules, webhook delivery attempts, settlement), and the staff actions the user may
    take: Void (`payments.void_payment`), Release hold (`payments.release_hold`), Void held payment.
    """

    list_display = (
        "id",
        "merchant",
        "status",
        "amount",
        "currency",
        "on_hold",
        "capture_method",
        "psp_reference",
        "created_at",
    )
    list_filter = ("status", "merchant", "currency", SettlementHoldFilter, "capture_method", "mode", "created_at")
    search_fields = ("=id", "=psp_reference", "=capture_psp_reference", "description")
    search_help_text = "Payment id, PSP reference, or merchant reference (description or a metadata value)."
    date_hierarchy = "created_at"
    inlines = [EventInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Payment]:
        """Payments with their merchant and an `is_on_hold` flag (one query for the list)."""
        return (
            super()
            .get_queryset(request)
            .select_related("merchant")
            .annotate(
                is_on_hold=Exists(
                    SettlementHold.objects.filter(payment=OuterRef("pk"), status=SettlementHoldStatus.ACTIVE)
                )
            )
        )

    @admin.display(boolean=True, description="On hold", ordering="is_on_hold")
    def on_hold(self, obj: Payment) -> bool:
        """True while the payment has an active hold."""
        return bool(getattr(obj, "is_on_hold", False))

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Payment], search_term: str
    ) -> tuple[QuerySet[Payment], bool]:
        """The search fields, plus payments whose metadata contains the term (the merchant's own references)."""
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if term:
            in_metadata = Payment.objects.annotate(metadata_text=Cast("metadata", TextField())).filter(
                metadata_text__icontains=term
            )
            results = queryset.filter(Q(pk__in=results.values("pk")) | Q(pk__in=in_metadata.values("pk")))
        return results, may_have_duplicates

    def get_urls(self) -> list[URLPattern]:
        """The admin URLs plus the staff actions: `void/`, `release-hold/`, `void-held/`."""
        wrap = self.admin_site.admin_view
        return [
            path("<path:object_id>/void/", wrap(self.void_view), name="payments_payment_void"),
            path("<path:object_id>/release-hold/", wrap(self.release_hold_view), name="payments_payment_release_hold"),
            path("<path:object_id>/void-held/", wrap(self.void_held_view), name="payments_payment_void_held"),
            *super().get_urls(),
        ]

    def _payment(self, request: HttpRequest, object_id: str, *, permission: str) -> Payment:
        if not request.user.has_perm(permission):
            raise PermissionDenied
        payment = self.get_object(request, unquote(object_id))
        if payment is None or not self.has_view_permission(request, payment):
            raise Http404("No such payment.")
        return payment

    def staff_actions(self, request: HttpRequest, payment: Payment) -> list[StaffAction]:
        """The action buttons `request.user` may use on `payment` in its current state."""
        held = SettlementHold.objects.filter(payment=payment, status=SettlementHoldStatus.ACTIVE).exists()
        can_void = request.user.has_perm("payments.void_payment")
        actions = []
        if can_void and payment.status == PaymentStatus.AUTHORIZED:
            actions.append(StaffAction("Void", reverse("admin:payments_payment_void", args=[payment.pk])))
        if held and request.user.has_perm("payments.release_hold"):
            actions.append(
                StaffAction("Release hold", reverse("admin:payments_payment_release_hold", args=[payment.pk]))
            )
        if held and can_void and payment.status == PaymentStatus.AUTHORIZED:
            actions.append(
                StaffAction("Void held payment", reverse("admin:payments_payment_void_held", args=[payment.pk]))
            )
        return actions

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """The read-only payment page, with the registered panels and the staff actions the user may take."""
        payment = self.get_object(request, unquote(object_id))
        extra = dict(extra_context or {})
        if payment is not None and self.has_view_permission(request, payment):
            extra["payment_panels"] = payment_panels(request, payment.pk)
            extra["staff_actions"] = self.staff_actions(request, payment)
        return super().change_view(request, object_id, form_url, extra_context=extra)

    def void_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Void an authorized payment (`payments.void_payment`, typed reason; payments.staff)."""
        payment = self._payment(request, object_id, permission="payments.void_payment")

        def perform(actor: Actor, data: dict[str, Any]) -> str:
            staff.payment_void_by_staff(
                payment_id=payment.pk, actor=actor, reason=data["reason"], void_reason=data["void_reason"]
            )
            return f"Payment {payment.pk} is being voided."

        return staff_action_view(
            self,
            request,
            payment,
            permission="payments.void_payment",
            title=f"Void {payment.pk}",
            form_class=VoidForm,
            perform=perform,
            intro=f"{payment.amount} {payment.currency} (minor units), {payment.status}. The hold on the card is "
            "released; the merchant receives payment.voided.",
        )

    def release_hold_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Release the payment's active hold (`payments.release_hold`, typed reason)."""
        payment = self._payment(request, object_id, permission="payments.release_hold")

        def perform(actor: Actor, data: dict[str, Any]) -> str:
            staff.settlement_hold_release_by_staff(payment_id=payment.pk, actor=actor, reason=data["reason"])
            return f"The hold on {payment.pk} was released; it settles at the next reconciliation."

        return staff_action_view(
            self,
            request,
            payment,
            permission="payments.release_hold",
            title=f"Release the hold on {payment.pk}",
            form_class=ReasonForm,
            perform=perform,
        )

    def void_held_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Void a held, authorized payment; its hold becomes `voided` (`payments.void_payment`)."""
        payment = self._payment(request, object_id, permission="payments.void_payment")

        def perform(actor: Actor, data: dict[str, Any]) -> str:
            staff.held_payment_void_by_staff(
                payment_id=payment.pk,
                actor=actor,
                reason=data["reason"],
                void_reason=data["void_reason"] or "fraudulent",
            )
            return f"Held payment {payment.pk} is being voided."

        return staff_action_view(
            self,
            request,
            payment,
            permission="payments.void_payment",
            title=f"Void held payment {payment.pk}",
            form_class=VoidForm,
            perform=perform,
        )


# The settlement hold queue is payments.admin.settlement_holds.
