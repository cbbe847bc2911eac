"""Payments tables: merchants, API keys, payments, idempotency keys, events and outbox messages.

Amounts are integers in minor units of the payment's ISO 4217 currency. Ids are prefixed, time-ordered strings
(payments.ids). Business logic lives in payments.services, not here.
"""

from __future__ import annotations

from functools import partial

import pgtrigger
from django.db import models

from payments.ids import new_id


class Mode(models.TextChoices):
    """API mode: objects made with a test key are invisible to live keys and the other way round."""

    TEST = "test"
    LIVE = "live"


class Merchant(models.Model):
    """A merchant account: the tenant that owns payments, API keys and webhook endpoints."""

    id = models.CharField(primary_key=True, max_length=40, default=partial(new_id, "mer"), editable=False)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"

    @property
    def ledger_owner(self) -> str:
        """The owner string of this merchant's ledger accounts (`merchant:<id>`)."""
        return f"merchant:{self.id}"


class ApiKey(models.Model):
    """A secret API key. Only its SHA-256 hash is stored; `prefix` (first 16 characters) identifies it to people.

    The plaintext (`sk_test_…` / `sk_live_…` + 32 random base62 characters, about 190 bits) is shown once.
    """

    id = models.CharField(primary_key=True, max_length=40, default=partial(new_id, "key"), editable=False)
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="api_keys")
    mode = models.CharField(max_length=4, choices=Mode.choices)
    prefix = models.CharField(max_length=16)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.mode})"


class PaymentStatus(models.TextChoices):
    """Payment states. `processing`: authorization in flight; `capturing`/`voiding`: that request is in flight.

    Transitions (payments.services): processing → authorized | failed; authorized → capturing | voiding;
    capturing → captured | authorized (capture refused); voiding → voided | authorized (void refused).
    """

    PROCESSING = "processing"
    AUTHORIZED = "authorized"
    CAPTURING = "capturing"
    CAPTURED = "captured"
    VOIDING = "voiding"
    VOIDED = "voided"
    FAILED = "failed"


class CaptureMethod(models.TextChoices):
    """`automatic`: captured as soon as authorized. `manual`: the merchant calls capture."""

    AUTOMATIC = "automatic"
    MANUAL = "manual"


class Payment(models.Model):
    """A card payment. `amount`, `amount_captured` are minor units of `currency` (ISO 4217, upper case).

    Card data is limited to what a processor returns about a token (brand, BIN, last 4, issuing country);
    card numbers are never accepted or stored.
    """

    id = models.CharField(primary_key=True, max_length=40, default=partial(new_id, "pay"), editable=False)
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="payments")
    mode = models.CharField(max_length=4, choices=Mode.choices)
    status = models.CharField(max_length=16, choices=PaymentStatus.choices, default=PaymentStatus.PROCESSING)
    amount = models.BigIntegerField()
    amount_captured = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=3)
    capture_method = models.CharField(max_length=16, choices=CaptureMethod.choices)
    payment_method = models.CharField(max_length=64)
    description = models.CharField(max_length=1000, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    customer_email = models.CharField(max_length=254, blank=True)
    customer_ip = models.GenericIPAddressField(null=True, blank=True)
    processor = models.CharField(max_length=32)
    psp_reference = models.CharField(max_length=64, blank=True, db_index=True)
    card_brand = models.CharField(max_length=32, blank=True)
    card_bin = models.CharField(max_length=8, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)
    card_country = models.CharField(max_length=2, blank=True)
    # The processor's stable fingerprint of the card behind the token (for velocity rules; never a card number).
    card_fingerprint = models.CharField(max_length=64, blank=True)
    # The PSP reference of the capture itself (a settlement report's `Modification Reference`).
    capture_psp_reference = models.CharField(max_length=64, blank=True)
    failure_code = models.CharField(max_length=64, blank=True)
    failure_message = models.CharField(max_length=255, blank=True)
    void_reason = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    authorized_at = models.DateTimeField(null=True, blank=True)
    captured_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["merchant", "mode", "-id"], name="payment_merchant_list"),
            models.Index(fields=["status"], name="payment_status"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(
                condition=models.Q(amount_captured__gte=0, amount_captured__lte=models.F("amount")),
                name="payment_captured_within_amount",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.amount} {self.currency} {self.status}"

    @property
    def ledger_reference(self) -> str:
        """The reference of this payment's ledger transactions (`payment:<id>`)."""
        return f"payment:{self.id}"


class IdempotencyKey(models.Model):
    """A merchant's idempotency key and the response stored for it (draft-ietf-httpapi-idempotency-key-header).

    Unique per (merchant, mode, key): the database, not Redis, guarantees that one key runs once.
    `fingerprint` is SHA-256 over method, path and canonical JSON body. `response_body` is the exact bytes sent.
    """

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+")
    mode = models.CharField(max_length=4, choices=Mode.choices)
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField()
    response_body = models.BinaryField()
    response_content_type = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["merchant", "mode", "key"], name="idempotency_key_unique"),
        ]


class Event(models.Model):
    """An immutable business event (`payment.authorized`, …) with a snapshot of its object as the API shows it.

    Merchants receive events through webhooks. `request_id` is the id of the API request that caused it.
    """

    id = models.CharField(primary_key=True, max_length=40, default=partial(new_id, "evt"), editable=False)
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="events")
    mode = models.CharField(max_length=4, choices=Mode.choices)
    type = models.CharField(max_length=64)
    payment = models.ForeignKey(Payment, null=True, on_delete=models.PROTECT, related_name="events")
    data = models.JSONField()
    request_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["merchant", "mode", "-id"], name="event_merchant_list")]

    def __str__(self) -> str:
        return f"{self.id} {self.type}"


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
        indexes = [
            models.Index(
                fields=["subscriber", "key", "id"],
                name="outbox_pending_shard",
                condition=models.Q(status="pending"),
            ),
            models.Index(fields=["available_at"], name="outbox_pending_due", condition=models.Q(status="pending")),
            models.Index(fields=["key"], name="outbox_key"),
        ]

    def __str__(self) -> str:
        return f"#{self.id} {self.topic} → {self.subscriber} ({self.status})"


class HoldStatus(models.TextChoices):
    """`active`: the payment may not settle. `released`: a person cleared it. `voided`: the payment was voided
    from the hold queue (a voided payment never settles; the hold is not released)."""

    ACTIVE = "active"
    RELEASED = "released"
    VOIDED = "voided"


class PaymentHold(models.Model):
    """A hold on a payment: while any hold of a payment is not `released`, reconciliation never settles it.

    Placed by another app through payments.holds.payment_hold_place (fraud: `source="fraud"`); ended by a staff
    user (payments.holds.payment_hold_release, or voiding the held payment). At most one hold per payment is
    `active` (a partial unique index). `details` is the placing app's evidence as JSON (fraud: the score and the
    rules that fired with their contributions); `reason` is a short stable code shown to merchants.
    """

    id = models.CharField(primary_key=True, max_length=40, default=partial(new_id, "hold"), editable=False)
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="holds")
    status = models.CharField(max_length=10, choices=HoldStatus.choices, default=HoldStatus.ACTIVE)
    reason = models.CharField(max_length=64)
    source = models.CharField(max_length=32)
    note = models.CharField(max_length=1000, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_by = models.CharField(max_length=150, blank=True)
    end_reason = models.CharField(max_length=1000, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["payment"], condition=models.Q(status="active"), name="payment_hold_one_active"
            ),
        ]
        indexes = [models.Index(fields=["status", "-created_at"], name="payment_hold_queue")]
        triggers = [pgtrigger.Protect(name="payment_hold_no_delete", operation=pgtrigger.Delete)]

    def __str__(self) -> str:
        return f"{self.id} on {self.payment_id} ({self.status})"


class AuditRecord(models.Model):
    """An append-only record of something a person did (void, release a hold, replay a dead letter, resolve a
    discrepancy): who (`actor`, the staff user's username, and `actor_id`), what (`action`, `object_type`,
    `object_id`), why (`reason`, typed by the person) and when. Written in the transaction of the change it
    records (payments.staff.audit_record_write); PostgreSQL refuses UPDATE and DELETE on it.

    Its Meta also carries the staff permissions checked by the admin's actions (`payments.void_payment`,
    `payments.release_hold`, `payments.replay_outbox`).
    """

    id = models.BigAutoField(primary_key=True)
    actor = models.CharField(max_length=150)
    actor_id = models.BigIntegerField(null=True, blank=True)
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    payment = models.ForeignKey(Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="audit_records")
    reason = models.TextField()
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        permissions = [
            ("void_payment", "Can void payments from the admin"),
            ("release_hold", "Can release payment holds"),
            ("replay_outbox", "Can replay dead-lettered outbox messages"),
        ]
        indexes = [models.Index(fields=["object_type", "object_id"], name="audit_record_object")]
        triggers = [pgtrigger.Protect(name="audit_record_append_only", operation=pgtrigger.Update | pgtrigger.Delete)]

    def __str__(self) -> str:
        return f"#{self.id} {self.action} {self.object_type}:{self.object_id} by {self.actor}"
