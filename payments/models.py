"""Payments tables: payments, refunds, events, settlement holds and the audit trail of staff actions.

Amounts are integers in minor units of the payment's ISO 4217 currency. Ids are prefixed, time-ordered strings
(config.platform.ids). Business logic lives in payments.services, not here.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any

import pgtrigger
from django.db import models
from django_fsm import RETURN_VALUE, FSMField, FSMModelMixin, transition

from config.platform.ids import new_id
from config.platform.merchants.models import Merchant, Mode
from payments.ledger_refs import payment_reference


class PaymentStatus(models.TextChoices):
    """Payment states. `processing`: authorization in flight; `capturing`/`voiding`: that request is in flight.

    Transitions (the `@transition` methods of Payment, called by payments.services with the row locked):
    processing → authorized | failed; authorized → capturing | voiding | expired; capturing → captured |
    authorized (capture refused); voiding → voided | authorized (void refused); captured → partially_refunded |
    refunded; partially_refunded → partially_refunded | refunded.
    """

    PROCESSING = "processing"
    AUTHORIZED = "authorized"
    CAPTURING = "capturing"
    CAPTURED = "captured"
    VOIDING = "voiding"
    VOIDED = "voided"
    FAILED = "failed"
    EXPIRED = "expired"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"


#: Statuses in which the processor is still working on a request; every other status is settled (for
#: `Prefer: wait`, a payment in one of these has not reached a final state yet).
PAYMENT_IN_FLIGHT = frozenset({PaymentStatus.PROCESSING, PaymentStatus.CAPTURING, PaymentStatus.VOIDING})


class CaptureMethod(models.TextChoices):
    """`automatic`: captured as soon as authorized. `manual`: the merchant calls capture."""

    AUTOMATIC = "automatic"
    MANUAL = "manual"


class Payment(FSMModelMixin, models.Model):
    """A card payment. `amount`, `amount_captured`, `amount_refunded`, `amount_refunding` are minor units of
    `currency` (ISO 4217, upper case).

    `status` is a django-fsm-2 state field that cannot be assigned directly: only the `@transition` methods below
    change it, and each raises `django_fsm.TransitionNotAllowed` from a wrong source state. The methods only set
    fields; payments.services locks the row, calls them, saves, and writes the ledger postings and events.

    `amount_refunding` is what pending refunds reserve; a check constraint keeps
    `amount_refunded + amount_refunding ≤ amount_captured`, so refunds can never exceed the capture.
    Card data is limited to what a processor returns about a token (brand, BIN, last 4, issuing country);
    card numbers are never accepted or stored.
    """

    id = models.CharField(primary_key=True, max_length=40, default=partial(new_id, "pay"), editable=False)
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="payments")
    mode = models.CharField(max_length=4, choices=Mode.choices)
    status = FSMField(max_length=20, choices=PaymentStatus.choices, default=PaymentStatus.PROCESSING, protected=True)
    amount = models.BigIntegerField()
    amount_captured = models.BigIntegerField(default=0)
    amount_refunded = models.BigIntegerField(default=0)
    amount_refunding = models.BigIntegerField(default=0)
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
    expires_at = models.DateTimeField(null=True, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["merchant", "mode", "-id"], name="payment_merchant_list"),
            models.Index(fields=["status"], name="payment_status"),
            models.Index(
                fields=["expires_at"], name="payment_authorized_expiry", condition=models.Q(status="authorized")
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(
                condition=models.Q(amount_captured__gte=0, amount_captured__lte=models.F("amount")),
                name="payment_captured_within_amount",
            ),
            models.CheckConstraint(
                condition=models.Q(
                    amount_refunded__gte=0,
                    amount_refunding__gte=0,
                    amount_captured__gte=models.F("amount_refunded") + models.F("amount_refunding"),
                ),
                name="payment_refunds_within_captured",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.amount} {self.currency} {self.status}"

    # --- State transitions (django-fsm-2). Each sets the fields of its step; callers save. -----------------------

    @transition(field=status, source=PaymentStatus.PROCESSING, target=PaymentStatus.AUTHORIZED)
    def authorize(self, *, at: datetime, expires_at: datetime) -> None:
        """The processor approved the authorization at `at`; the hold lapses at `expires_at`."""
        self.authorized_at = at
        self.expires_at = expires_at

    @transition(field=status, source=PaymentStatus.PROCESSING, target=PaymentStatus.FAILED)
    def fail(self, *, code: str, message: str) -> None:
        """The authorization was declined or could not be completed (`failure_code` = `code`)."""
        self.failure_code = code
        self.failure_message = message[:255]

    @transition(field=status, source=PaymentStatus.AUTHORIZED, target=PaymentStatus.CAPTURING)
    def request_capture(self) -> None:
        """A capture was requested; the worker asks the processor."""

    @transition(field=status, source=PaymentStatus.CAPTURING, target=PaymentStatus.CAPTURED)
    def capture(self, *, amount: int, at: datetime) -> None:
        """The processor accepted a capture of `amount` minor units (≤ `amount`; the rest of the hold is released)."""
        self.amount_captured = amount
        self.captured_at = at
        self.failure_code = self.failure_message = ""

    @transition(field=status, source=PaymentStatus.CAPTURING, target=PaymentStatus.AUTHORIZED)
    def refuse_capture(self, *, code: str, message: str) -> None:
        """The processor refused the capture: authorized again, with the reason."""
        self.failure_code = code
        self.failure_message = message[:255]

    @transition(field=status, source=PaymentStatus.AUTHORIZED, target=PaymentStatus.VOIDING)
    def request_void(self, *, reason: str) -> None:
        """A void was requested (`reason` as given by the merchant); the worker asks the processor."""
        self.void_reason = reason

    @transition(field=status, source=PaymentStatus.VOIDING, target=PaymentStatus.VOIDED)
    def void(self, *, at: datetime) -> None:
        """The processor cancelled the authorization; the hold is released."""
        self.voided_at = at

    @transition(field=status, source=PaymentStatus.VOIDING, target=PaymentStatus.AUTHORIZED)
    def refuse_void(self, *, code: str, message: str) -> None:
        """The processor refused the void: authorized again, with the reason."""
        self.failure_code = code
        self.failure_message = message[:255]

    @transition(field=status, source=PaymentStatus.AUTHORIZED, target=PaymentStatus.EXPIRED)
    def expire(self, *, at: datetime) -> None:
        """The uncaptured authorization lapsed (PAYMENT_AUTHORIZATION_TTL); the hold is released."""
        self.expired_at = at

    @transition(field=status, source=[PaymentStatus.CAPTURED, PaymentStatus.PARTIALLY_REFUNDED], target=None)
    def reserve_refund(self, *, amount: int) -> None:
        """A refund of `amount` minor units was requested: reserve it (status unchanged).

        Raises ValueError when `amount` is not within 1 … what is still refundable.
        """
        if not 0 < amount <= self.amount_refundable:
            raise ValueError(f"amount {amount} is not within 1 … {self.amount_refundable}")
        self.amount_refunding += amount

    @transition(
        field=status,
        source=[PaymentStatus.CAPTURED, PaymentStatus.PARTIALLY_REFUNDED],
        target=RETURN_VALUE(PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED),
    )
    def settle_refund(self, *, amount: int) -> str:
        """A reserved refund of `amount` minor units succeeded: `refunded` once everything captured is refunded."""
        self.amount_refunding -= amount
        self.amount_refunded += amount
        return (
            PaymentStatus.REFUNDED if self.amount_refunded == self.amount_captured else PaymentStatus.PARTIALLY_REFUNDED
        )

    @transition(field=status, source=[PaymentStatus.CAPTURED, PaymentStatus.PARTIALLY_REFUNDED], target=None)
    def release_refund(self, *, amount: int) -> None:
        """A reserved refund of `amount` minor units failed: the reservation is released (status unchanged)."""
        self.amount_refunding -= amount

    @property
    def amount_refundable(self) -> int:
        """Minor units that new refunds may still take: captured − refunded − reserved by pending refunds."""
        return self.amount_captured - self.amount_refunded - self.amount_refunding

    @property
    def ledger_reference(self) -> str:
        """The reference of this payment's ledger transactions (payments.ledger_refs.payment_reference)."""
        return payment_reference(self.id)


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
        indexes = [
            models.Index(fields=["merchant", "mode", "-id"], name="event_merchant_list"),
            models.Index(fields=["merchant", "mode", "type", "-id"], name="event_merchant_type_list"),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.type}"


class RefundStatus(models.TextChoices):
    """`pending`: sent (or about to be sent) to the processor; `succeeded` or `failed` are final."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class RefundReason(models.TextChoices):
    """Why the merchant refunds (Stripe's reasons)."""

    REQUESTED_BY_CUSTOMER = "requested_by_customer"
    DUPLICATE = "duplicate"
    FRAUDULENT = "fraudulent"


class Refund(FSMModelMixin, models.Model):
    """A refund of all or part of a captured payment: `amount` minor units of the payment's `currency`.

    Created `pending` (reserving its amount on the payment), sent to the processor by the worker, then
    `succeeded` (ledger posting, payment's `amount_refunded`) or `failed` (reservation released). `status` changes
    only through the `@transition` methods; payments.services locks the payment row around every change.
    """

    id = models.CharField(primary_key=True, max_length=40, default=partial(new_id, "re"), editable=False)
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="refunds")
    mode = models.CharField(max_length=4, choices=Mode.choices)
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = FSMField(max_length=16, choices=RefundStatus.choices, default=RefundStatus.PENDING, protected=True)
    reason = models.CharField(max_length=32, choices=RefundReason.choices, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    psp_reference = models.CharField(max_length=64, blank=True)
    failure_code = models.CharField(max_length=64, blank=True)
    failure_message = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    succeeded_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["merchant", "mode", "-id"], name="refund_merchant_list"),
            models.Index(fields=["payment", "-id"], name="refund_payment_list"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="refund_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.amount} {self.currency} {self.status}"

    @transition(field=status, source=RefundStatus.PENDING, target=RefundStatus.SUCCEEDED)
    def succeed(self, *, psp_reference: str, at: datetime) -> None:
        """The processor accepted the refund (its own `psp_reference`)."""
        self.psp_reference = psp_reference
        self.succeeded_at = at

    @transition(field=status, source=RefundStatus.PENDING, target=RefundStatus.FAILED)
    def fail(self, *, code: str, message: str, at: datetime) -> None:
        """The processor refused the refund, or could not be reached after every retry."""
        self.failure_code = code
        self.failure_message = message[:255]
        self.failed_at = at


class SettlementHoldStatus(models.TextChoices):
    """A settlement hold's status. `active`: the payment may not settle. `released`: a person cleared it.
    `voided`: the payment was voided from the hold queue (a voided payment never settles; the hold is not
    released)."""

    ACTIVE = "active"
    RELEASED = "released"
    VOIDED = "voided"


class _ProtectInstalledAs(pgtrigger.Protect):
    """pgtrigger.Protect pinned to the PostgreSQL name (`pgid`) its trigger and function were installed with.

    pgtrigger names them `pgtrigger_<name>_<first 5 hex digits of sha1("app_label.ModelName:name")>`, so renaming
    the model would rename the trigger, and migrations would drop and re-create it. Pinned, a model rename stays
    state-only: the trigger in the database is the same one.
    """

    def __init__(self, *, pgid: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pgid = pgid

    def get_pgid(self, model: type[models.Model]) -> str:
        """The pinned name, whatever the model is called now."""
        return self.pgid


class SettlementHold(models.Model):
    """A settlement hold (a review hold) on a payment: while any settlement hold of a payment is not `released`,
    reconciliation never settles it. Not the card issuer's authorization hold, nor the ledger's pending
    transaction: a held payment is still authorized and captured as usual.

    Placed by another app through payments.settlement_holds.settlement_hold_place (fraud: `source="fraud"`); ended
    by a staff user (payments.settlement_holds.settlement_hold_release, or voiding the held payment). At most one
    hold per payment is `active` (a partial unique index). `details` is the placing app's evidence as JSON (fraud:
    the score and the rules that fired with their contributions); `reason` is a short stable code shown to
    merchants. The table keeps its first name, `payments_paymenthold` (the model was `PaymentHold`).
    """

    id = models.CharField(primary_key=True, max_length=40, default=partial(new_id, "hold"), editable=False)
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="settlement_holds")
    status = models.CharField(max_length=10, choices=SettlementHoldStatus.choices, default=SettlementHoldStatus.ACTIVE)
    reason = models.CharField(max_length=64)
    source = models.CharField(max_length=32)
    note = models.CharField(max_length=1000, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_by = models.CharField(max_length=150, blank=True)
    end_reason = models.CharField(max_length=1000, blank=True)

    class Meta:
        db_table = "payments_paymenthold"
        constraints = [
            models.UniqueConstraint(
                fields=["payment"], condition=models.Q(status="active"), name="payment_hold_one_active"
            ),
        ]
        indexes = [models.Index(fields=["status", "-created_at"], name="payment_hold_queue")]
        # Installed while the model was PaymentHold: sha1("payments.PaymentHold:payment_hold_no_delete") → 895bc.
        triggers = [
            _ProtectInstalledAs(
                name="payment_hold_no_delete",
                operation=pgtrigger.Delete,
                pgid="pgtrigger_payment_hold_no_delete_895bc",
            )
        ]

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
