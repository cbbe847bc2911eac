"""What a risk reviewer (the fraud app) may know about a payment, as a plain contract (no model crosses over).

The facts come from the merchant's request (amount, customer email and IP) and from the processor's answer to the
authorization (card BIN, issuing country, fingerprint). Card numbers are never among them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from payments.errors import NotFound
from payments.models import Payment


@dataclass(frozen=True, kw_only=True)
class PaymentRiskFacts:
    """A payment's risk-relevant facts. `amount` in minor units of `currency` (ISO 4217); `card_bin` 6–8 digits,
    `card_country` and IP-derived countries ISO 3166-1 alpha-2; empty strings / None when unknown.
    `authorized_at` is the event time velocity windows are measured at (falls back to `created_at`)."""

    payment_id: str
    merchant_id: str
    mode: str
    status: str
    amount: int
    currency: str
    card_bin: str
    card_country: str
    card_fingerprint: str
    customer_email: str
    customer_ip: str | None
    authorized_at: dt.datetime


def payment_risk_facts(*, payment_id: str) -> PaymentRiskFacts:
    """The facts of one payment (any merchant: for internal reviewers only). Raises NotFound."""
    payment = Payment.objects.filter(pk=payment_id).first()
    if payment is None:
        raise NotFound(f"No such payment: {payment_id}", param="id")
    return PaymentRiskFacts(
        payment_id=payment.pk,
        merchant_id=payment.merchant_id,
        mode=payment.mode,
        status=payment.status,
        amount=payment.amount,
        currency=payment.currency,
        card_bin=payment.card_bin,
        card_country=payment.card_country.upper(),
        card_fingerprint=payment.card_fingerprint,
        customer_email=payment.customer_email.strip().lower(),
        customer_ip=payment.customer_ip or None,
        authorized_at=payment.authorized_at or payment.created_at,
    )
