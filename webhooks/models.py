"""Webhook endpoints, deliveries (one per event and endpoint) and delivery attempts (one per HTTP request)."""

from __future__ import annotations

from functools import partial

from django.db import models

from config.platform.ids import new_id
from config.platform.merchants.models import Merchant, Mode


class WebhookEndpoint(models.Model):
    """A merchant's URL that receives events of `enabled_events` (`["*"]` = all) in one mode.

    `secret` (`whsec_` + base64 of 24 random bytes) signs deliveries; the API shows it once, at creation.
    It is stored in clear because signing needs it (like Stripe's and Svix's endpoint secrets).
    """

    id = models.CharField(primary_key=True, max_length=40, default=partial(new_id, "we"), editable=False)
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="webhook_endpoints")
    mode = models.CharField(max_length=4, choices=Mode.choices)
    url = models.URLField(max_length=2048)
    description = models.CharField(max_length=255, blank=True)
    enabled_events = models.JSONField(default=list)
    secret = models.CharField(max_length=64)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["merchant", "mode", "enabled"], name="webhook_endpoint_lookup")]

    def __str__(self) -> str:
        return f"{self.id} {self.url}"

    def subscribes_to(self, event_type: str) -> bool:
        """True when this endpoint receives `event_type`."""
        return "*" in self.enabled_events or event_type in self.enabled_events


class DeliveryStatus(models.TextChoices):
    """`pending` (not yet delivered, retrying), `succeeded` (a 2xx answer), `failed` (gave up)."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class WebhookDelivery(models.Model):
    """The delivery of one event to one endpoint. Unique per (event, endpoint), so fan-out never duplicates."""

    id = models.CharField(primary_key=True, max_length=40, default=partial(new_id, "wd"), editable=False)
    event = models.ForeignKey("payments.Event", on_delete=models.PROTECT, related_name="webhook_deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.PROTECT, related_name="deliveries")
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"], name="webhook_delivery_once_per_endpoint"),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.status}"


class WebhookAttempt(models.Model):
    """One HTTP request of a delivery: when, the answer's status (or the error), and how long it took (ms)."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.PROTECT, related_name="attempt_log")
    attempted_at = models.DateTimeField(auto_now_add=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.CharField(max_length=1000, blank=True)
    error = models.CharField(max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    succeeded = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"{self.delivery_id} → {self.response_status or self.error}"
