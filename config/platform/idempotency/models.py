"""Stored idempotency keys and the answers replayed for them (table `payments_idempotencykey`, kept from the
payments app it moved out of; migration idempotency.0001 is state-only)."""

from __future__ import annotations

from django.db import models

from config.platform.merchants.models import Merchant, Mode


class RecoveryPoint(models.TextChoices):
    """How far the request that owns an idempotency key got (Stripe's recovery points; see
    config.platform.idempotency.execution).

    `started`: the key is stored and locked, nothing else is. `object_created`: the work committed (the object
    and its outbox rows) but not the response. `finished`: the response is stored and is replayed from now on.
    """

    STARTED = "started"
    OBJECT_CREATED = "object_created"
    FINISHED = "finished"


class IdempotencyKey(models.Model):
    """A merchant's idempotency key and the response stored for it (draft-ietf-httpapi-idempotency-key-header).

    Unique per (merchant, mode, key): the database, not Redis, guarantees that one key runs once.
    `fingerprint` is SHA-256 over method, path and canonical JSON body. `response_body` is the exact bytes sent.
    `locked_until`/`lock_token` lease the key to the request working on it; a request that died leaves a lease
    that expires (IDEMPOTENCY_LOCK_TTL seconds), after which a retry takes over from `recovery_point`.
    `object_type`/`object_id` name what the work created, so a retry can finish the response without redoing it.
    """

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+")
    mode = models.CharField(max_length=4, choices=Mode.choices)
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    recovery_point = models.CharField(max_length=16, choices=RecoveryPoint.choices, default=RecoveryPoint.STARTED)
    locked_until = models.DateTimeField(null=True, blank=True)
    lock_token = models.CharField(max_length=32, blank=True)
    object_type = models.CharField(max_length=32, blank=True)
    object_id = models.CharField(max_length=40, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.BinaryField(null=True, blank=True)
    response_content_type = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "payments_idempotencykey"  # kept from the payments app it moved out of
        constraints = [
            models.UniqueConstraint(fields=["merchant", "mode", "key"], name="idempotency_key_unique"),
            models.CheckConstraint(
                condition=~models.Q(recovery_point="finished") | models.Q(response_status__isnull=False),
                name="idempotency_key_finished_has_response",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.recovery_point})"
