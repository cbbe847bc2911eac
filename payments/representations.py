"""The JSON form of payments objects, shared by the API and by event snapshots (plain dicts, no serializers)."""

from __future__ import annotations

from typing import Any

from config.platform.http.rendering import iso
from payments.models import Payment, PaymentStatus, Refund, SettlementHold


def payment_to_dict(payment: Payment) -> dict[str, Any]:
    """A payment as the API shows it. Amounts are integers in minor units of `currency`.

    `amount_capturable`: what a capture may still take (the authorized amount while `authorized`, else 0).
    `amount_refunded`: what succeeded refunds returned; `amount_refundable`: what new refunds may still take
    (captured − refunded − pending refunds). `expires_at`: when an uncaptured authorization lapses.
    `hold`: the payment's latest hold (settlement_hold_to_dict) or None; uses `payment.settlement_holds` (prefetchable).
    """
    capturable = payment.amount if payment.status == PaymentStatus.AUTHORIZED else 0
    card = None
    if payment.card_last4:
        card = {
            "brand": payment.card_brand,
            "bin": payment.card_bin,
            "last4": payment.card_last4,
            "country": payment.card_country or None,
        }
    return {
        "id": payment.id,
        "object": "payment",
        "status": payment.status,
        "amount": payment.amount,
        "amount_capturable": capturable,
        "amount_captured": payment.amount_captured,
        "amount_refunded": payment.amount_refunded,
        "amount_refundable": payment.amount_refundable,
        "currency": payment.currency,
        "capture_method": payment.capture_method,
        "payment_method": {"token": payment.payment_method, "card": card},
        "description": payment.description,
        "metadata": payment.metadata,
        "customer": {"email": payment.customer_email or None, "ip": payment.customer_ip},
        "processor": payment.processor,
        "psp_reference": payment.psp_reference or None,
        "failure_code": payment.failure_code or None,
        "failure_message": payment.failure_message or None,
        "void_reason": payment.void_reason or None,
        "livemode": payment.mode == "live",
        "created": iso(payment.created_at),
        "authorized_at": iso(payment.authorized_at),
        "captured_at": iso(payment.captured_at),
        "voided_at": iso(payment.voided_at),
        "hold": settlement_hold_to_dict(
            max(payment.settlement_holds.all(), key=lambda h: (h.created_at, h.id), default=None)
        ),
        "expires_at": iso(payment.expires_at) if payment.status == PaymentStatus.AUTHORIZED else None,
        "expired_at": iso(payment.expired_at),
    }


def settlement_hold_to_dict(hold: SettlementHold | None) -> dict[str, Any] | None:
    """A hold as merchants see it: `{"id", "status": active|released|voided, "reason", "created", "ended"}`.

    While `status` is `active` the payment does not settle to the merchant's available balance.
    """
    if hold is None:
        return None
    return {
        "id": hold.id,
        "status": hold.status,
        "reason": hold.reason,
        "created": iso(hold.created_at),
        "ended": iso(hold.ended_at),
    }


def refund_to_dict(refund: Refund) -> dict[str, Any]:
    """A refund as the API shows it: `amount` in minor units of `currency`; `status` pending|succeeded|failed."""
    return {
        "id": refund.id,
        "object": "refund",
        "payment": refund.payment_id,
        "status": refund.status,
        "amount": refund.amount,
        "currency": refund.currency,
        "reason": refund.reason or None,
        "metadata": refund.metadata,
        "psp_reference": refund.psp_reference or None,
        "failure_code": refund.failure_code or None,
        "failure_message": refund.failure_message or None,
        "livemode": refund.mode == "live",
        "created": iso(refund.created_at),
        "succeeded_at": iso(refund.succeeded_at),
        "failed_at": iso(refund.failed_at),
    }
