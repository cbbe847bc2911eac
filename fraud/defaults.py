"""The default scoring configuration, seeded by a data migration (fraud/migrations/0002_default_rules.py).

Finance staff change all of it in the admin afterwards. Scores are points; the payment is held at HOLD_SCORE or
more, so any blocklist hit holds on its own, and velocity or a large amount hold only together with another
signal. Amounts are minor units. BIN 400020 is the sandbox acquirer's `tok_risky` test card
(docs/sandbox-acquirer.md), so a held payment is easy to demonstrate.
"""

from __future__ import annotations

from typing import Any

HOLD_SCORE = 80

#: (name, kind, score, window_seconds, max_count, description)
RULES: list[tuple[str, str, int, int | None, int | None, str]] = [
    ("Card velocity (1 h)", "velocity_card", 50, 3600, 5, "More than 5 payments with one card in an hour."),
    ("IP velocity (1 h)", "velocity_ip", 40, 3600, 10, "More than 10 payments from one IP address in an hour."),
    ("Email velocity (1 h)", "velocity_email", 40, 3600, 5, "More than 5 payments with one email in an hour."),
    ("IP blocklist", "blocklist_ip", 100, None, None, "The IP address is in a blocklisted network."),
    ("Email blocklist", "blocklist_email", 100, None, None, "The email address is blocklisted."),
    ("BIN blocklist", "blocklist_bin", 100, None, None, "The card's BIN is blocklisted."),
    ("Country blocklist", "blocklist_country", 100, None, None, "The card's issuing country is blocklisted."),
    ("Large amount", "amount_threshold", 40, None, None, "At or above the currency's amount threshold."),
    ("Card/IP country mismatch", "country_mismatch", 30, None, None, "Card and IP countries differ."),
]

#: (list type, value, note)
LIST_ENTRIES: list[tuple[str, str, str]] = [
    ("bin", "400020", "Sandbox test card tok_risky (docs/sandbox-acquirer.md)"),
]

#: currency → threshold in minor units (5,000.00 in each).
AMOUNT_THRESHOLDS: dict[str, int] = {"EUR": 500_000, "GBP": 500_000, "USD": 500_000}


def seed(apps: Any) -> None:
    """Create the defaults that do not exist yet (by rule name, list value, currency). Idempotent."""
    rule_model = apps.get_model("fraud", "Rule")
    entry_model = apps.get_model("fraud", "ListEntry")
    threshold_model = apps.get_model("fraud", "AmountThreshold")
    settings_model = apps.get_model("fraud", "ScoringSettings")
    settings_model.objects.get_or_create(pk=1, defaults={"hold_score": HOLD_SCORE})
    for name, kind, score, window, max_count, description in RULES:
        rule_model.objects.get_or_create(
            name=name,
            defaults={
                "kind": kind,
                "score": score,
                "window_seconds": window,
                "max_count": max_count,
                "description": description,
            },
        )
    for list_type, value, note in LIST_ENTRIES:
        entry_model.objects.get_or_create(list_type=list_type, value=value, defaults={"note": note})
    for currency, amount in AMOUNT_THRESHOLDS.items():
        threshold_model.objects.get_or_create(currency=currency, defaults={"amount": amount})
