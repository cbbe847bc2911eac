"""The transactional outbox's one table (`payments_outboxmessage`, kept from the payments app it moved out of;
migration outbox.0001 is state-only)."""

from __future__ import annotations

from django.db import models


class OutboxStatus(models.TextChoices):
    """`pending` (waiting or leased to a worker), `done`, or `dead` (gave up after the subscriber's attempts)."""

    PENDING = "pending"
    DONE = "done"
    DEAD = "dead"


class OutboxMessage(models.Model):
    """One unit of work for one subscriber, written in the same transaction as the change that caused it.

    Rows with the same (subscriber, key) are handled strictly in id order. A worker leases a row until
    `locked_until`; `attempts` counts claims; failures wait until `available_at` (capped exponential backoff).
    """

    id = models.BigAutoField(primary_key=True)
    topic = models.CharField(max_length=64)
    subscriber = models.CharField(max_length=64)
    key = models.CharField(max_length=64)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=8, choices=OutboxStatus.choices, default=OutboxStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    available_at = models.DateTimeField()
    locked_until = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(max_length=32, blank=True)
    last_error = models.TextField(blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "payments_outboxmessage"  # kept from the payments app it moved out of
        indexes = [
            # The claim walks pending rows in id order through this index; it checks a row's shard (subscriber,
            # key) for an older pending row through `outbox_key` (see config.platform.outbox.engine._CLAIM_SQL).
            models.Index(fields=["id"], name="outbox_pending_id", condition=models.Q(status="pending")),
            models.Index(fields=["available_at"], name="outbox_pending_due", condition=models.Q(status="pending")),
            models.Index(fields=["key"], name="outbox_key"),
        ]

    def __str__(self) -> str:
        return f"#{self.id} {self.topic} → {self.subscriber} ({self.status})"
