"""Fraud read services."""

from __future__ import annotations

from fraud.models import FraudResult


def fraud_result_for_payment(*, payment_id: str) -> FraudResult | None:
    """The payment's score with its fired rules prefetched, or None when it was not scored (yet)."""
    return FraudResult.objects.filter(payment_id=payment_id).prefetch_related("fired_rules").first()
