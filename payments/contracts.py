"""Frozen dataclasses that carry payments data across the app boundary: other apps read these, never the models.

- EventRecord: one public event (`payment.captured`, …) as stored, for the apps that deliver events (webhooks).
  Read it with payments.selectors.event_get_for_delivery; turn it into the JSON merchants receive with
  payments.events.event_record_to_dict.
- PaymentRiskFacts: what a risk reviewer (the fraud app) may know about a payment: the merchant's request
  (amount, customer email and IP) and the processor's answer to the authorization (card BIN, issuing country,
  fingerprint). Card numbers are never among them. Read with payments.selectors.payment_risk_facts.
- SettlementPayment, SettlementRefund: what reconciliation may know to settle a payment or a refund. Settlement
  eligibility is decided by payments, which owns the payment and its settlement holds: a payment settles when it
  was captured, is not voided, and none of its settlement holds is still in force. Read with the settlement
  selectors of payments.selectors.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from payments.ledger_refs import payment_reference

#: Payment statuses in which a payment counts as voided for settlement (payments.models.PaymentStatus values).
_VOIDED_STATUSES = ("voiding", "voided")


@dataclass(frozen=True, kw_only=True)
class EventRecord:
    """A public event: `id` (`evt_…`), `type` (a key of payments.events.PUBLIC_EVENT_TYPES), the `merchant_id` and
    `mode` (`test` | `live`) it belongs to, `created_at` (aware, UTC), `request_id` (of the API request or outbox
    row that caused it; empty when none) and `data_object`, the snapshot of its object's API form when it
    happened (the event's `data.object`; read it, never change it)."""

    id: str
    type: str
    merchant_id: str
    mode: str
    created_at: dt.datetime
    request_id: str
    data_object: dict[str, Any]

    @property
    def livemode(self) -> bool:
        """True for a live-mode event, False in test mode."""
        return self.mode == "live"


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


@dataclass(frozen=True, kw_only=True)
class SettlementPayment:
    """A payment as reconciliation sees it. Amounts in minor units of `currency`.

    `held`: some settlement hold is not `released` (active, or ended by voiding the payment): it must not settle.
    `voided`: `voiding` or `voided`. `captured`: money was captured (`amount_captured` > 0).
    """

    payment_id: str
    merchant_id: str
    mode: str
    status: str
    currency: str
    amount: int
    amount_captured: int
    psp_reference: str
    capture_psp_reference: str
    captured_at: dt.datetime | None
    held: bool

    @property
    def voided(self) -> bool:
        """True while voiding and once voided."""
        return self.status in _VOIDED_STATUSES

    @property
    def captured(self) -> bool:
        """True once a capture was recorded (also after later refunds)."""
        return self.amount_captured > 0 and self.captured_at is not None

    @property
    def ledger_reference(self) -> str:
        """The reference of the payment's ledger transactions (payments.ledger_refs.payment_reference)."""
        return payment_reference(self.payment_id)


@dataclass(frozen=True, kw_only=True)
class SettlementRefund:
    """A refund as reconciliation sees it: `psp_reference` is the refund's own (the report's Modification
    Reference), `payment_psp_reference` the authorization's. `amount` in minor units of `currency`."""

    refund_id: str
    payment_id: str
    merchant_id: str
    mode: str
    status: str
    amount: int
    currency: str
    psp_reference: str
    payment_psp_reference: str
    succeeded: bool
