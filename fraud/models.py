"""Fraud tables: the scoring configuration staff edit in the admin (rules, lists, amount thresholds, IP country
ranges, the hold threshold) and the results (one per payment, with every rule that fired and its contribution).

Rules are data, not constants: the code only knows how to evaluate each *kind* of rule (fraud.rules); which rules
exist, their points and their parameters are rows. Defaults are seeded by a data migration (fraud.defaults).
"""

from __future__ import annotations

import ipaddress

from django.core.exceptions import ValidationError
from django.db import models

from ledger.errors import InvalidAmount
from ledger.money import currency_exponent


class RuleKind(models.TextChoices):
    """What a rule checks (fraud.rules evaluates each kind).

    Velocity kinds count the payments authorized with the same card fingerprint, IP or email within the last
    `window_seconds` (Redis sliding windows) and fire when the count, this payment included, exceeds `max_count`.
    Blocklist kinds fire when the payment's value is on the list of that type. `amount_threshold` fires at or
    above the currency's AmountThreshold. `country_mismatch` fires when the card's issuing country and the IP's
    country (from IpCountryRange) are both known and differ.
    """

    VELOCITY_CARD = "velocity_card", "Velocity per card fingerprint"
    VELOCITY_IP = "velocity_ip", "Velocity per IP address"
    VELOCITY_EMAIL = "velocity_email", "Velocity per email"
    BLOCKLIST_IP = "blocklist_ip", "IP address on the blocklist"
    BLOCKLIST_EMAIL = "blocklist_email", "Email on the blocklist"
    BLOCKLIST_BIN = "blocklist_bin", "BIN on the blocklist"
    BLOCKLIST_COUNTRY = "blocklist_country", "Issuing country on the blocklist"
    AMOUNT_THRESHOLD = "amount_threshold", "Amount at or above the currency's threshold"
    COUNTRY_MISMATCH = "country_mismatch", "Card country differs from IP country"


VELOCITY_KINDS = (RuleKind.VELOCITY_CARD, RuleKind.VELOCITY_IP, RuleKind.VELOCITY_EMAIL)


class Rule(models.Model):
    """A scoring rule: when it fires it adds `score` points. Disabled rules are skipped (rules are disabled, not
    deleted, so past results keep their meaning). Velocity rules need `window_seconds` and `max_count`."""

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=32, choices=RuleKind.choices)
    score = models.PositiveIntegerField(help_text="Points added to the payment's score when the rule fires.")
    enabled = models.BooleanField(default=True)
    window_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text="Velocity only: the sliding window, in seconds."
    )
    max_count = models.PositiveIntegerField(
        null=True, blank=True, help_text="Velocity only: fires when more payments than this fall in the window."
    )
    description = models.CharField(max_length=500, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["kind", "name"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(kind__in=[k.value for k in VELOCITY_KINDS])
                | models.Q(window_seconds__gt=0, max_count__isnull=False),
                name="fraud_rule_velocity_parameters",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} (+{self.score})"

    def clean(self) -> None:
        """Velocity rules need a positive window and a maximum count (also a database constraint)."""
        if self.kind in VELOCITY_KINDS and (not self.window_seconds or self.max_count is None):
            raise ValidationError("Velocity rules need window_seconds (> 0) and max_count.")


class ListType(models.TextChoices):
    """The blocklists: IP addresses or networks (CIDR), emails, BINs (6–8 digit prefixes), issuing countries."""

    IP = "ip", "IP address or network"
    EMAIL = "email", "Email"
    BIN = "bin", "BIN"
    COUNTRY = "country", "Issuing country"


def normalize_list_value(list_type: str, value: str) -> str:
    """The canonical form of a blocklist value: a CIDR network (`203.0.113.0/24`, a single address as /32 or
    /128), a lower-case email, 6–8 digits, or an upper-case ISO 3166-1 alpha-2 code. Raises ValidationError."""
    value = (value or "").strip()
    if list_type == ListType.IP:
        try:
            return str(ipaddress.ip_network(value, strict=False))
        except ValueError as exc:
            raise ValidationError(f"{value!r} is not an IP address or network.") from exc
    if list_type == ListType.EMAIL:
        if "@" not in value:
            raise ValidationError(f"{value!r} is not an email address.")
        return value.lower()
    if list_type == ListType.BIN:
        if not (value.isdigit() and 6 <= len(value) <= 8):
            raise ValidationError("A BIN is 6 to 8 digits.")
        return value
    if list_type == ListType.COUNTRY:
        if not (len(value) == 2 and value.isalpha()):
            raise ValidationError("A country is an ISO 3166-1 alpha-2 code such as NG.")
        return value.upper()
    raise ValidationError(f"unknown list type {list_type!r}")


class ListEntry(models.Model):
    """One value on a blocklist (normalized on save: see normalize_list_value)."""

    list_type = models.CharField(max_length=10, choices=ListType.choices)
    value = models.CharField(max_length=254)
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "list entries"
        ordering = ["list_type", "value"]
        constraints = [models.UniqueConstraint(fields=["list_type", "value"], name="fraud_list_entry_unique")]

    def __str__(self) -> str:
        return f"{self.list_type}:{self.value}"

    def clean(self) -> None:
        """Normalize `value` for its list type; raises ValidationError for a malformed value."""
        self.value = normalize_list_value(self.list_type, self.value)


class AmountThreshold(models.Model):
    """Per currency: payments of at least `amount` minor units fire the `amount_threshold` rules."""

    currency = models.CharField(max_length=3, unique=True, help_text="ISO 4217 code, upper case.")
    amount = models.BigIntegerField(help_text="Minor units of the currency (500000 EUR = 5,000.00 €).")

    class Meta:
        ordering = ["currency"]
        constraints = [models.CheckConstraint(condition=models.Q(amount__gt=0), name="fraud_amount_threshold_positive")]

    def __str__(self) -> str:
        return f"{self.currency} ≥ {self.amount}"

    def clean(self) -> None:
        """The currency must be an ISO 4217 code with minor units."""
        self.currency = (self.currency or "").upper()
        try:
            currency_exponent(self.currency)
        except InvalidAmount as exc:
            raise ValidationError(str(exc)) from exc


def _validate_network(value: str) -> None:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError as exc:
        raise ValidationError(f"{value!r} is not an IP network.") from exc


class IpCountryRange(models.Model):
    """Where an IP network is known to be (ISO 3166-1 alpha-2), for `country_mismatch`. The most specific
    (longest prefix) matching network wins. Clearhouse ships none: staff add what they know."""

    network = models.CharField(max_length=64, unique=True, validators=[_validate_network], help_text="CIDR.")
    country = models.CharField(max_length=2)
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["network"]

    def __str__(self) -> str:
        return f"{self.network} → {self.country}"

    def clean(self) -> None:
        """Normalize the network and the country code."""
        _validate_network(self.network)
        self.network = str(ipaddress.ip_network(self.network, strict=False))
        self.country = (self.country or "").upper()


class ScoringSettings(models.Model):
    """The single row of global scoring settings: payments scoring `hold_score` points or more are held."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    hold_score = models.PositiveIntegerField(default=80)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "scoring settings"
        verbose_name_plural = "scoring settings"
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="fraud_scoring_settings_singleton")]

    def __str__(self) -> str:
        return f"Hold at {self.hold_score} points"


class Decision(models.TextChoices):
    """`allow`: below the hold score. `hold`: at or above it (the payment was put on hold)."""

    ALLOW = "allow"
    HOLD = "hold"


class FraudResult(models.Model):
    """The score of one payment, computed once from its `payment.authorized` event (`event_id`).

    Unique per payment, so scoring the same event twice changes nothing. `hold_score` is the threshold in force
    when it was scored.
    """

    payment = models.OneToOneField("payments.Payment", on_delete=models.PROTECT, related_name="fraud_result")
    event_id = models.CharField(max_length=40, blank=True)
    score = models.PositiveIntegerField()
    hold_score = models.PositiveIntegerField()
    decision = models.CharField(max_length=8, choices=Decision.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["decision", "-created_at"], name="fraud_result_decision")]

    def __str__(self) -> str:
        return f"{self.payment_id}: {self.score} ({self.decision})"


class FiredRule(models.Model):
    """A rule that fired for a result: its name and kind as they were, the points it added, and what it saw."""

    result = models.ForeignKey(FraudResult, on_delete=models.PROTECT, related_name="fired_rules")
    rule = models.ForeignKey(Rule, null=True, on_delete=models.SET_NULL, related_name="+")
    rule_name = models.CharField(max_length=100)
    kind = models.CharField(max_length=32, choices=RuleKind.choices)
    contribution = models.PositiveIntegerField()
    detail = models.CharField(max_length=500)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.rule_name} +{self.contribution}"
