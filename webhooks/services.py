"""Webhooks write services: create endpoints, fan an event out to deliveries, record delivery attempts."""

from __future__ import annotations

import base64
import ipaddress
import secrets
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.platform.merchants.models import Merchant
from config.platform.outbox import engine as outbox
from payments.events import PUBLIC_EVENT_TYPES
from payments.selectors import event_get_for_delivery
from webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint

DELIVER_TOPIC = "webhooks.delivery"


class EndpointInvalid(ValueError):
    """The endpoint's URL or event list is not acceptable; `field` names the offending input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EndpointInvalid("url", "Must be an absolute http(s) URL.")
    if parts.username or parts.password:
        raise EndpointInvalid("url", "Must not contain credentials.")
    if settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS:
        return
    if parts.scheme != "https":
        raise EndpointInvalid("url", "Must use https.")
    host = parts.hostname
    if host == "localhost" or host.endswith(".localhost"):
        raise EndpointInvalid("url", "Must not point to a private or loopback address.")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return  # a name: checked again at delivery time against what it resolves to
    if not address.is_global:
        raise EndpointInvalid("url", "Must not point to a private or loopback address.")


@transaction.atomic
def endpoint_create(
    *, merchant: Merchant, mode: str, url: str, enabled_events: list[str], description: str = ""
) -> WebhookEndpoint:
    """Create an endpoint for `merchant` in `mode`. `enabled_events` lists event types or `*` (all).

    Raises EndpointInvalid for a URL that is not http(s) (https only, and no private addresses, unless
    WEBHOOKS_ALLOW_PRIVATE_NETWORKS), or for an unknown event type.
    """
    _check_url(url)
    unknown = [e for e in enabled_events if e != "*" and e not in PUBLIC_EVENT_TYPES]
    if unknown:
        raise EndpointInvalid("enabled_events", f"Unknown event types: {', '.join(unknown)}.")
    if not enabled_events:
        raise EndpointInvalid("enabled_events", "List at least one event type, or '*' for all.")
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    return WebhookEndpoint.objects.create(
        merchant=merchant,
        mode=mode,
        url=url,
        description=description,
        enabled_events=sorted(set(enabled_events)),
        secret=secret,
    )


@transaction.atomic
def event_fanout(*, event_id: str) -> list[WebhookDelivery]:
    """Create a delivery (and its outbox row) for each enabled endpoint subscribed to the event.

    Idempotent: deliveries are unique per (event, endpoint); only newly created ones are queued.
    """
    event = event_get_for_delivery(event_id=event_id)
    endpoints = WebhookEndpoint.objects.filter(merchant_id=event.merchant_id, mode=event.mode, enabled=True)
    created = []
    for endpoint in endpoints:
        if not endpoint.subscribes_to(event.type):
            continue
        delivery, is_new = WebhookDelivery.objects.get_or_create(event_id=event.id, endpoint=endpoint)
        if is_new:
            outbox.publish(DELIVER_TOPIC, key=delivery.id, payload={"delivery_id": delivery.id})
            created.append(delivery)
    return created


@transaction.atomic
def attempt_record(
    *,
    delivery_id: str,
    response_status: int | None,
    response_body: str,
    error: str,
    duration_ms: int,
    final: bool,
) -> WebhookDelivery:
    """Record one delivery attempt; a 2xx marks the delivery `succeeded`, a failure on the `final` attempt
    marks it `failed`. Returns the delivery."""
    delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery_id)
    succeeded = response_status is not None and 200 <= response_status < 300
    WebhookAttempt.objects.create(
        delivery=delivery,
        response_status=response_status,
        response_body=response_body[:1000],
        error=error[:500],
        duration_ms=duration_ms,
        succeeded=succeeded,
    )
    delivery.attempts += 1
    if succeeded:
        delivery.status = DeliveryStatus.SUCCEEDED
        delivery.delivered_at = timezone.now()
    elif final:
        delivery.status = DeliveryStatus.FAILED
    delivery.save(update_fields=["attempts", "status", "delivered_at"])
    return delivery
