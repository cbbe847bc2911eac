"""Admin for fraud: the scoring configuration finance staff edit (rules, blocklists, amount thresholds, IP
country ranges, the hold score) and the results (read-only), plus the fraud panel of the payment page.

Rules are disabled rather than deleted (past results name them); list entries, thresholds and ranges may be
deleted by users with the permission. Results and fired rules can never be changed or deleted here.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from config.platform.admin import ReadOnlyAdmin, ReadOnlyInline, admin_link
from fraud.models import AmountThreshold, FiredRule, FraudResult, IpCountryRange, ListEntry, Rule, ScoringSettings
from fraud.selectors import fraud_result_for_payment
from payments.panels import Panel, register_payment_panel


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin):
    """Scoring rules: kind, points, enabled, velocity window and maximum. Disable instead of deleting."""

    list_display = ("name", "kind", "score", "enabled", "window_seconds", "max_count", "updated_at")
    list_filter = ("kind", "enabled")
    list_editable = ("score", "enabled")
    search_fields = ("name",)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Never: rules are disabled, not deleted, so past results keep their meaning."""
        return False


@admin.register(ListEntry)
class ListEntryAdmin(admin.ModelAdmin):
    """Blocklists: IP addresses or networks, emails, BINs, issuing countries (values are normalized)."""

    list_display = ("list_type", "value", "note", "created_at")
    list_filter = ("list_type",)
    search_fields = ("value", "note")


@admin.register(AmountThreshold)
class AmountThresholdAdmin(admin.ModelAdmin):
    """Per-currency amount thresholds, in minor units."""

    list_display = ("currency", "amount")


@admin.register(IpCountryRange)
class IpCountryRangeAdmin(admin.ModelAdmin):
    """IP networks with a known country, for the country mismatch rule."""

    list_display = ("network", "country", "note")
    search_fields = ("network", "country")


@admin.register(ScoringSettings)
class ScoringSettingsAdmin(admin.ModelAdmin):
    """The hold score (one row)."""

    list_display = ("__str__", "hold_score", "updated_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Only while the single settings row is missing."""
        return super().has_add_permission(request) and not ScoringSettings.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Never: there is always one settings row."""
        return False


class FiredRuleInline(ReadOnlyInline):
    """The rules that fired, with their contribution to the score."""

    model = FiredRule
    fields = ("rule_name", "kind", "contribution", "detail")
    readonly_fields = fields


@admin.register(FraudResult)
class FraudResultAdmin(ReadOnlyAdmin):
    """Scores of payments (filter decision `hold` for everything fraud held), with the rules that fired."""

    list_display = ("payment_link", "score", "hold_score", "decision", "fired", "created_at")
    list_filter = ("decision",)
    search_fields = ("=payment__id",)
    inlines = [FiredRuleInline]

    def get_queryset(self, request: HttpRequest) -> Any:
        """Results with their fired rules (one query for the list)."""
        return super().get_queryset(request).prefetch_related("fired_rules")

    @admin.display(description="Payment")
    def payment_link(self, obj: FraudResult) -> str:
        """A link to the scored payment's page."""
        return admin_link(obj.payment, obj.payment_id)

    @admin.display(description="Rules that fired")
    def fired(self, obj: FraudResult) -> str:
        """Each fired rule with its contribution."""
        return ", ".join(f"{r.rule_name} +{r.contribution}" for r in obj.fired_rules.all())


@register_payment_panel
def fraud_panel(request: HttpRequest, payment_id: str) -> Panel | None:
    """The payment page's fraud result: score, threshold, decision and each fired rule with its contribution."""
    if not request.user.has_perm("fraud.view_fraudresult"):
        return None
    result = fraud_result_for_payment(payment_id=payment_id)
    if result is None:
        return Panel(title="Fraud result", columns=[], rows=[], empty="Not scored (yet).", order=30)
    rows: list[list[Any]] = [[r.rule_name, r.kind, f"+{r.contribution}", r.detail] for r in result.fired_rules.all()]
    rows.append(["Total", "", str(result.score), f"hold at {result.hold_score}: {result.decision}"])
    return Panel(
        title=f"Fraud result: score {result.score}, {result.decision}",
        columns=["Rule that fired", "Kind", "Contribution", "Detail"],
        rows=rows,
        order=30,
    )
