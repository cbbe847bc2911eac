"""Admin pages for payments: merchants, payments (with every related record on one page), the hold queue, the
audit trail and the outbox (dead letters can be inspected and replayed).

Nothing here edits or deletes payments, events, outbox rows, holds or audit records: every page is read-only
and every change goes through a staff use case (payments.staff) that calls the same service as the API, checks
a permission, takes a typed reason and writes an audit record in the same transaction.

The payment page composes records of apps payments may not import (fraud, webhooks, reconciliation): those apps
register a *panel* here (`register_payment_panel`) from their own admin module, and this page renders whatever
is registered. payments never imports them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q, QuerySet, TextField
from django.db.models.functions import Cast
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from ledger import selectors as ledger_selectors
from payments import staff
from payments.audit import Actor
from payments.errors import PaymentsError
from payments.models import (
    ApiKey,
    AuditRecord,
    Event,
    HoldStatus,
    Merchant,
    OutboxMessage,
    OutboxStatus,
    Payment,
    PaymentHold,
    PaymentStatus,
)


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


# --- Panels: related records of any app on the payment page ------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Panel:
    """A table on the payment page: `title`, column names, rows of cells (text, or HTML made with format_html),
    `empty` (shown when there are no rows) and `order` (panels are sorted by it)."""

    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]
    empty: str = "None."
    order: int = 100


PanelProvider = Callable[[HttpRequest, Payment], Panel | None]
_panel_providers: list[PanelProvider] = []


def register_payment_panel(provider: PanelProvider) -> PanelProvider:
    """Register a function `(request, payment) → Panel | None` whose panel the payment page shows (return None
    when the user may not see it). Call at import time of an app's admin module; usable as a decorator."""
    if provider not in _panel_providers:
        _panel_providers.append(provider)
    return provider


def payment_panels(request: HttpRequest, payment: Payment) -> list[Panel]:
    """The panels every registered provider gives for `payment` and `request.user`, in `order`."""
    panels = [p for p in (provider(request, payment) for provider in _panel_providers) if p is not None]
    return sorted(panels, key=lambda p: p.order)


def admin_link(obj: Any, text: Any = None) -> str:
    """An HTML link to `obj`'s admin page (its change/view page)."""
    return admin_link_to(obj._meta.app_label, obj._meta.model_name, obj.pk, text)


def admin_link_to(app_label: str, model_name: str, pk: Any, text: Any = None) -> str:
    """An HTML link to the admin page of row `pk` of `app_label.model_name`, for rows known only by id (another
    app's contracts, e.g. a ledger transaction record)."""
    url = reverse(f"admin:{app_label}_{model_name}_change", args=[pk])
    return format_html('<a href="{}">{}</a>', url, text if text is not None else pk)


@register_payment_panel
def ledger_panel(request: HttpRequest, payment: Payment) -> Panel | None:
    """The payment's ledger transactions and each of their entries (amounts in minor units)."""
    if not request.user.has_perm("ledger.view_ledgertransaction"):
        return None
    rows = []
    for txn in ledger_selectors.transactions_for_reference(reference=payment.ledger_reference):
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
def holds_panel(request: HttpRequest, payment: Payment) -> Panel | None:
    """The payment's holds (fraud review and others)."""
    if not request.user.has_perm("payments.view_paymenthold"):
        return None
    rows = [
        [admin_link(h), h.status, h.source, h.reason, h.note, h.created_at, h.ended_by, h.end_reason]
        for h in payment.holds.order_by("created_at")
    ]
    return Panel(
        title="Holds",
        columns=["Hold", "Status", "Source", "Reason", "Note", "Placed", "Ended by", "Why"],
        rows=rows,
        order=20,
    )


@register_payment_panel
def outbox_panel(request: HttpRequest, payment: Payment) -> Panel | None:
    """The outbox rows keyed by the payment (its work and its events' deliveries to subscribers)."""
    if not request.user.has_perm("payments.view_outboxmessage"):
        return None
    rows = [
        [admin_link(m, f"#{m.pk}"), m.topic, m.subscriber, m.status, m.attempts, m.last_error[:120], m.created_at]
        for m in OutboxMessage.objects.filter(key=payment.pk).order_by("id")
    ]
    return Panel(
        title="Outbox messages",
        columns=["Message", "Topic", "Subscriber", "Status", "Attempts", "Last error", "Created"],
        rows=rows,
        order=40,
    )


@register_payment_panel
def audit_panel(request: HttpRequest, payment: Payment) -> Panel | None:
    """What staff did to the payment, with who and why."""
    if not request.user.has_perm("payments.view_auditrecord"):
        return None
    rows = [[r.created_at, r.actor, r.action, r.reason] for r in payment.audit_records.order_by("id")]
    return Panel(title="Audit trail", columns=["At", "Staff user", "Action", "Reason"], rows=rows, order=90)


# --- Merchants ---------------------------------------------------------------------------------------------


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


# --- Payments ----------------------------------------------------------------------------------------------


class EventInline(ReadOnlyInline):
    """A payment's events, oldest first."""

    model = Event
    fields = ("id", "type", "request_id", "created_at")
    readonly_fields = fields
    ordering = ("id",)


class HoldFilter(admin.SimpleListFilter):
    """Payments by hold: held now (an active hold), ever held, never held."""

    title = "hold"
    parameter_name = "hold"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        """On hold, ever held, never held."""
        return [("active", "On hold"), ("any", "Ever held"), ("none", "Never held")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Payment]) -> QuerySet[Payment]:
        """Payments with an active hold / any hold / none, by the chosen value."""
        active = Exists(PaymentHold.objects.filter(payment=OuterRef("pk"), status=HoldStatus.ACTIVE))
        any_hold = Exists(PaymentHold.objects.filter(payment=OuterRef("pk")))
        if self.value() == "active":
            return queryset.filter(active)
        if self.value() == "any":
            return queryset.filter(any_hold)
        if self.value() == "none":
            return queryset.exclude(any_hold)
        return queryset


class ReasonForm(forms.Form):
    """A typed reason, kept in the audit trail with the staff user's name."""

    reason = forms.CharField(
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        help_text="Required. Kept in the audit trail with your name.",
    )


class VoidForm(ReasonForm):
    """A void: the reason code merchants see (as in the API) and the typed reason for the audit trail."""

    void_reason = forms.ChoiceField(
        choices=[("", "—"), *((r, r) for r in staff.VOID_REASONS)], required=False, label="Void reason (API code)"
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
    domain_errors: tuple[type[Exception], ...] = (PaymentsError,),
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
    list_filter = ("status", "merchant", "currency", HoldFilter, "capture_method", "mode", "created_at")
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
            .annotate(is_on_hold=Exists(PaymentHold.objects.filter(payment=OuterRef("pk"), status=HoldStatus.ACTIVE)))
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
        held = PaymentHold.objects.filter(payment=payment, status=HoldStatus.ACTIVE).exists()
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
            extra["payment_panels"] = payment_panels(request, payment)
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
            staff.hold_release_by_staff(payment_id=payment.pk, actor=actor, reason=data["reason"])
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


# --- Hold queue --------------------------------------------------------------------------------------------


class HoldStatusFilter(admin.SimpleListFilter):
    """Hold status, showing the queue (`active`) unless another choice is made."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        """Each hold status, and all."""
        return [(s.value, s.label) for s in HoldStatus] + [("all", "All")]

    def choices(self, changelist: Any) -> Any:
        """The choices, with `active` selected when nothing is chosen."""
        for lookup, title in self.lookup_choices:
            yield {
                "selected": (self.value() or HoldStatus.ACTIVE) == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request: HttpRequest, queryset: QuerySet[PaymentHold]) -> QuerySet[PaymentHold]:
        """Holds of the chosen status (`active` by default; `all` for every hold)."""
        value = self.value() or HoldStatus.ACTIVE
        return queryset if value == "all" else queryset.filter(status=value)


@admin.register(PaymentHold)
class PaymentHoldAdmin(ReadOnlyAdmin):
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
    list_filter = (HoldStatusFilter, "source", "reason")
    search_fields = ("=id", "=payment__id", "=payment__psp_reference")
    ordering = ("-created_at",)
    readonly_fields = ("rules",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[PaymentHold]:
        """Holds with their payment (one query for the queue)."""
        return super().get_queryset(request).select_related("payment")

    @admin.display(description="Payment")
    def payment_link(self, obj: PaymentHold) -> str:
        """A link to the held payment's page."""
        return admin_link(obj.payment)

    @admin.display(description="Amount (minor units)")
    def amount(self, obj: PaymentHold) -> str:
        """The payment's amount in minor units and its currency."""
        return f"{obj.payment.amount} {obj.payment.currency}"

    @admin.display(description="Payment status")
    def payment_status(self, obj: PaymentHold) -> str:
        """The payment's current status."""
        return obj.payment.status

    @admin.display(description="Rules that fired")
    def rules(self, obj: PaymentHold) -> str:
        """The score and each fired rule with its contribution and detail, from the hold's evidence."""
        fired = obj.details.get("rules") or []
        score = obj.details.get("score")
        text = "; ".join(f"{r.get('rule')} +{r.get('contribution')} ({r.get('detail')})" for r in fired)
        return f"score {score}: {text}" if score is not None else (text or obj.note)


# --- Audit trail -------------------------------------------------------------------------------------------


@admin.register(AuditRecord)
class AuditRecordAdmin(ReadOnlyAdmin):
    """Everything staff did, who did it and why (append-only)."""

    list_display = ("id", "created_at", "actor", "action", "object_type", "object_id", "payment", "reason")
    list_filter = ("action", "object_type", "actor")
    search_fields = ("=object_id", "=payment__id", "actor", "reason")
    date_hierarchy = "created_at"


# --- Outbox ------------------------------------------------------------------------------------------------


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdmin):
    """Outbox rows: pending work, done work and dead letters (filter status `dead`). A dead letter's page shows
    its payload and last error, and a Replay button for users with `payments.replay_outbox`."""

    list_display = (
        "id",
        "topic",
        "subscriber",
        "key",
        "status",
        "attempts",
        "short_error",
        "available_at",
        "created_at",
    )
    list_filter = ("status", "subscriber", "topic")
    search_fields = ("=key", "=id")

    @admin.display(description="Last error")
    def short_error(self, obj: OutboxMessage) -> str:
        """The first 80 characters of the last error."""
        return obj.last_error[:80]

    def get_urls(self) -> list[URLPattern]:
        """The admin URLs plus `replay/`."""
        wrap = self.admin_site.admin_view
        return [
            path("<path:object_id>/replay/", wrap(self.replay_view), name="payments_outboxmessage_replay"),
            *super().get_urls(),
        ]

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """The read-only row page (payload, last error), with Replay for dead letters and users who may."""
        message = self.get_object(request, unquote(object_id))
        extra = dict(extra_context or {})
        if (
            message is not None
            and message.status == OutboxStatus.DEAD
            and request.user.has_perm("payments.replay_outbox")
        ):
            extra["staff_actions"] = [
                StaffAction("Replay", reverse("admin:payments_outboxmessage_replay", args=[message.pk]))
            ]
        return super().change_view(request, object_id, form_url, extra_context=extra)

    def replay_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Replay a dead letter (`payments.replay_outbox`, typed reason; payments.staff.outbox_replay_by_staff)."""
        if not request.user.has_perm("payments.replay_outbox"):
            raise PermissionDenied
        message = self.get_object(request, unquote(object_id))
        if message is None or not self.has_view_permission(request, message):
            raise Http404("No such outbox message.")

        def perform(actor: Actor, data: dict[str, Any]) -> str:
            staff.outbox_replay_by_staff(message_id=message.pk, actor=actor, reason=data["reason"])
            return f"Outbox message #{message.pk} is pending again."

        return staff_action_view(
            self,
            request,
            message,
            permission="payments.replay_outbox",
            title=f"Replay outbox message #{message.pk}",
            form_class=ReasonForm,
            perform=perform,
            intro=f"{message.topic} → {message.subscriber}, {message.attempts} attempts. Last error: "
            f"{message.last_error[:500]}",
        )


# API keys: create (secret shown once) and revoke (issue 4).
from payments import admin_keys  # noqa: E402, F401
