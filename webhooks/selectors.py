"""Webhooks read services, scoped to one merchant and mode (another merchant's endpoint is NotFound, HTTP 404)."""

from __future__ import annotations

from django.db.models import QuerySet

from config.platform.errors import NotFound
from config.platform.merchants.models import Merchant
from webhooks.models import WebhookEndpoint


def endpoint_list(*, merchant: Merchant, mode: str) -> QuerySet[WebhookEndpoint]:
    """The merchant's webhook endpoints in `mode` (unordered; callers page by id)."""
    return WebhookEndpoint.objects.filter(merchant=merchant, mode=mode)


def endpoint_get(*, merchant: Merchant, mode: str, endpoint_id: str) -> WebhookEndpoint:
    """One of the merchant's endpoints. Raises NotFound for unknown ids and other merchants' or modes' ids."""
    endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id, merchant=merchant, mode=mode).first()
    if endpoint is None:
        raise NotFound(f"No such webhook endpoint: {endpoint_id}", param="id")
    return endpoint
