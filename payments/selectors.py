"""Payments read services. Every selector that takes a merchant scopes to that merchant and mode."""

from __future__ import annotations

from django.db.models import QuerySet

from payments.errors import NotFound
from payments.models import Merchant, Payment


def payment_list(*, merchant: Merchant, mode: str) -> QuerySet[Payment]:
    """The merchant's payments in `mode` (unordered; callers page by id)."""
    return Payment.objects.filter(merchant=merchant, mode=mode)


def payment_get(*, merchant: Merchant, mode: str, payment_id: str) -> Payment:
    """One of the merchant's payments. Raises NotFound for unknown ids and for other merchants' or modes' ids."""
    payment = Payment.objects.filter(pk=payment_id, merchant=merchant, mode=mode).first()
    if payment is None:
        raise NotFound(f"No such payment: {payment_id}", param="id")
    return payment
