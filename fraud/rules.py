"""Evaluating the scoring rules: deterministic functions from a payment's facts and the configuration to the
rules that fire. Nothing here writes; fraud.services records the outcome.

- velocity_card / velocity_ip / velocity_email: more than `max_count` payments with the same card fingerprint /
  IP / email (this one included) in the last `window_seconds`; records the count.
- blocklist_ip / _email / _bin / _country: the IP is in a listed network, or the email, a BIN prefix or the
  card's issuing country is listed; records the listed value.
- amount_threshold: `amount` ≥ the currency's AmountThreshold (both minor units); records both.
- country_mismatch: the card's issuing country and the IP's country (IpCountryRange) are known and differ.

A rule whose input is unknown (no fingerprint, no IP, no email, no threshold for the currency) does not fire.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from django.db.models import BooleanField, IntegerField
from django.db.models.expressions import RawSQL

from fraud.models import (
    VELOCITY_KINDS,
    AmountThreshold,
    IpCountryRange,
    ListEntry,
    ListType,
    Rule,
    RuleKind,
    ScoringSettings,
)
from payments.contracts import PaymentRiskFacts

#: Velocity kind → (dimension name in Redis, the fact it counts).
VELOCITY_DIMENSIONS: dict[str, tuple[str, Callable[[PaymentRiskFacts], str]]] = {
    RuleKind.VELOCITY_CARD: ("card", lambda f: f.card_fingerprint),
    RuleKind.VELOCITY_IP: ("ip", lambda f: f.customer_ip or ""),
    RuleKind.VELOCITY_EMAIL: ("email", lambda f: f.customer_email),
}

#: Default hold threshold when the settings row is missing (it is seeded by a migration).
DEFAULT_HOLD_SCORE = 80


@dataclass(frozen=True, kw_only=True)
class Hit:
    """A rule that fired: its id, name and kind, the points it adds and a short description of what it saw."""

    rule_id: int | None
    rule_name: str
    kind: str
    contribution: int
    detail: str


@dataclass(frozen=True, kw_only=True)
class ScoringConfig:
    """The configuration in force: enabled rules, blocklists by type, thresholds by currency (minor units)."""

    rules: Sequence[Rule]
    blocklists: dict[str, list[str]] = field(default_factory=dict)
    amount_thresholds: dict[str, int] = field(default_factory=dict)
    hold_score: int = DEFAULT_HOLD_SCORE


def load_config() -> ScoringConfig:
    """Read the enabled rules, the lists, the thresholds and the hold score from the database."""
    lists: dict[str, list[str]] = {t.value: [] for t in ListType}
    for list_type, value in ListEntry.objects.values_list("list_type", "value"):
        lists.setdefault(list_type, []).append(value)
    settings_row = ScoringSettings.objects.filter(pk=1).first()
    return ScoringConfig(
        rules=list(Rule.objects.filter(enabled=True).order_by("id")),
        blocklists=lists,
        amount_thresholds=dict(AmountThreshold.objects.values_list("currency", "amount")),
        hold_score=settings_row.hold_score if settings_row else DEFAULT_HOLD_SCORE,
    )


def ip_country(ip: str | None) -> str:
    """The country (ISO 3166-1 alpha-2) of the most specific IpCountryRange containing `ip`, or "" if unknown."""
    if not ip:
        return ""
    match = (
        IpCountryRange.objects.annotate(
            contains=RawSQL("%s::inet <<= network::cidr", (ip,), output_field=BooleanField()),
            prefix=RawSQL("masklen(network::cidr)", (), output_field=IntegerField()),
        )
        .filter(contains=True)
        .order_by("-prefix")
        .first()
    )
    return match.country if match else ""


def velocity_windows(config: ScoringConfig) -> dict[str, list[int]]:
    """Per velocity kind, the distinct windows (seconds) of its enabled rules, ascending."""
    windows: dict[str, set[int]] = {}
    for rule in config.rules:
        if rule.kind in VELOCITY_KINDS and rule.window_seconds:
            windows.setdefault(rule.kind, set()).add(rule.window_seconds)
    return {kind: sorted(ws) for kind, ws in windows.items()}


def _ip_listed(ip: str | None, networks: list[str]) -> str:
    if not ip:
        return ""
    address = ipaddress.ip_address(ip)
    for network in networks:
        if address in ipaddress.ip_network(network, strict=False):
            return network
    return ""


def evaluate(
    facts: PaymentRiskFacts,
    config: ScoringConfig,
    *,
    velocity_counts: dict[tuple[str, int], int],
    ip_country_code: str,
) -> list[Hit]:
    """The rules of `config` that fire for `facts`, in rule order.

    `velocity_counts` maps (velocity kind, window seconds) to the count observed (fraud.velocity);
    `ip_country_code` is the IP's country or "". Pure: same inputs, same hits.
    """
    hits: list[Hit] = []

    def hit(rule: Rule, detail: str) -> None:
        hits.append(
            Hit(rule_id=rule.pk, rule_name=rule.name, kind=rule.kind, contribution=rule.score, detail=detail[:500])
        )

    lists = config.blocklists
    for rule in config.rules:
        kind = rule.kind
        if kind in VELOCITY_KINDS:
            dimension, fact = VELOCITY_DIMENSIONS[kind]
            count = velocity_counts.get((kind, rule.window_seconds or 0))
            if fact(facts) and count is not None and rule.max_count is not None and count > rule.max_count:
                hit(rule, f"{count} payments with this {dimension} in {rule.window_seconds} s (max {rule.max_count})")
        elif kind == RuleKind.BLOCKLIST_IP:
            if network := _ip_listed(facts.customer_ip, lists.get(ListType.IP, [])):
                hit(rule, f"IP {facts.customer_ip} is in blocklisted {network}")
        elif kind == RuleKind.BLOCKLIST_EMAIL:
            if facts.customer_email and facts.customer_email in lists.get(ListType.EMAIL, []):
                hit(rule, f"email {facts.customer_email} is blocklisted")
        elif kind == RuleKind.BLOCKLIST_BIN:
            listed = [b for b in lists.get(ListType.BIN, []) if facts.card_bin and facts.card_bin.startswith(b)]
            if listed:
                hit(rule, f"BIN {facts.card_bin} matches blocklisted {listed[0]}")
        elif kind == RuleKind.BLOCKLIST_COUNTRY:
            if facts.card_country and facts.card_country in lists.get(ListType.COUNTRY, []):
                hit(rule, f"issuing country {facts.card_country} is blocklisted")
        elif kind == RuleKind.AMOUNT_THRESHOLD:
            threshold = config.amount_thresholds.get(facts.currency)
            if threshold is not None and facts.amount >= threshold:
                hit(rule, f"amount {facts.amount} {facts.currency} ≥ threshold {threshold} (minor units)")
        elif kind == RuleKind.COUNTRY_MISMATCH:
            if facts.card_country and ip_country_code and facts.card_country != ip_country_code:
                hit(rule, f"card issued in {facts.card_country}, IP in {ip_country_code}")
    return hits
