"""Merchants (the tenants) and their API keys. Only a key's SHA-256 hash is stored.

The tables keep the names they had in the payments app (`payments_merchant`, `payments_apikey`): the models moved,
the rows did not (migration merchants.0001 is state-only).
"""

from __future__ import annotations

from functools import partial

from django.db import models

from config.platform.ids import new_id


class Mode(models.TextChoices):
    """API mode: objects made with a test key are invisible to live keys and the other way round."""

    TEST = "test"
    LIVE = "live"


class Merchant(models.Model):
    """A merchant account: the tenant that owns payments, API keys and webhook endpoints."""

    id = models.CharField(primary_key=True, max_length=40, default=partial(new_id, "mer"), editable=False)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "payments_merchant"  # kept from the payments app it moved out of

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"


class ApiKey(models.Model):
    """A secret API key. Only its SHA-256 hash is stored; `prefix` (first 16 characters) identifies it to people.

    The plaintext (`sk_test_…` / `sk_live_…` + 32 random base62 characters, about 190 bits) is shown once.
    A merchant holds at most two active keys per mode (`slot` 1 or 2, unique while not revoked), so a key can be
    rotated without downtime: create the second key, deploy it, revoke the first.
    """

    id = models.CharField(primary_key=True, max_length=40, default=partial(new_id, "key"), editable=False)
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="api_keys")
    mode = models.CharField(max_length=4, choices=Mode.choices)
    prefix = models.CharField(max_length=16)
    key_hash = models.CharField(max_length=64, unique=True)
    slot = models.PositiveSmallIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "payments_apikey"  # kept from the payments app it moved out of
        constraints = [
            models.CheckConstraint(condition=models.Q(slot__in=[1, 2]), name="api_key_slot_1_or_2"),
            models.UniqueConstraint(
                fields=["merchant", "mode", "slot"],
                condition=models.Q(revoked_at__isnull=True),
                name="api_key_two_active_per_mode",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.mode})"
