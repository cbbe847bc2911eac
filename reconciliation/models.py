"""Reconciliation tables: runs (one per distinct report of a day), settlements (what was settled from which row)
and discrepancies (what did not match, with the amounts on each side). Amounts are integers in minor units.

Nothing here is ever deleted (PostgreSQL triggers refuse it); settlements are also never updated. A discrepancy
is updated only to be resolved (by a person, with a note, audited) or closed/reopened by a later run of the same
day that no longer / again finds it.
"""

from __future__ import annotations

import pgtrigger
from django.db import models


class ReconciliationRun(models.Model):
    """One distinct settlement report of one processor and day. Re-running the same report reuses its run, so a
    re-run writes nothing; an edited or newer report of the same day is a new run. `report` keeps the bytes."""

    processor = models.CharField(max_length=32)
    report_date = models.DateField()
    report_sha256 = models.CharField(max_length=64)
    source = models.CharField(max_length=500, help_text="`processor` (fetched) or the file it was read from.")
    report = models.BinaryField()
    row_count = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["processor", "report_date", "report_sha256"], name="reconciliation_run_unique_report"
            ),
        ]
        triggers = [
            pgtrigger.Protect(name="reconciliation_run_append_only", operation=pgtrigger.Update | pgtrigger.Delete)
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.processor} {self.report_date}"


class SettlementKind(models.TextChoices):
    """`capture`: a Settled row (merchant pending → available, fees booked). `refund`: a Refunded row (its
    commission booked). `fee`: a Fee row (the processor's daily fee booked)."""

    CAPTURE = "capture"
    REFUND = "refund"
    FEE = "fee"


class Settlement(models.Model):
    """A report row that was settled: which payment (or refund, or fee), the amounts, and the ledger transaction.

    One per payment capture and one per (processor, kind, Modification Reference), so nothing settles twice.
    """

    run = models.ForeignKey(ReconciliationRun, on_delete=models.PROTECT, related_name="settlements")
    processor = models.CharField(max_length=32)
    report_date = models.DateField()
    batch_number = models.PositiveIntegerField(null=True)
    kind = models.CharField(max_length=8, choices=SettlementKind.choices)
    payment = models.ForeignKey(
        "payments.Payment", null=True, blank=True, on_delete=models.PROTECT, related_name="settlements"
    )
    refund_id = models.CharField(max_length=40, blank=True)
    psp_reference = models.CharField(max_length=64, blank=True)
    modification_reference = models.CharField(max_length=64)
    currency = models.CharField(max_length=3)
    gross_amount = models.BigIntegerField(help_text="Minor units.")
    fees = models.BigIntegerField(
        help_text="Commission + Markup + Scheme Fees + Interchange (or the Fee row), minor units."
    )
    ledger_transaction_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["processor", "kind", "modification_reference"], name="settlement_once_per_row"
            ),
            models.UniqueConstraint(
                fields=["payment"], condition=models.Q(kind="capture"), name="settlement_once_per_capture"
            ),
        ]
        triggers = [pgtrigger.Protect(name="settlement_append_only", operation=pgtrigger.Update | pgtrigger.Delete)]

    def __str__(self) -> str:
        return f"{self.kind} {self.modification_reference} {self.gross_amount} {self.currency}"


class DiscrepancyKind(models.TextChoices):
    """The kinds of discrepancy (docs/operations.md, Reconciliation)."""

    UNKNOWN_ROW = "unknown_row", "In the report, not ours"
    MISSING_FROM_REPORT = "missing_from_report", "Ours (captured), missing from the report"
    AMOUNT_MISMATCH = "amount_mismatch", "Amount mismatch"
    CURRENCY_MISMATCH = "currency_mismatch", "Currency mismatch"
    STATUS_MISMATCH = "status_mismatch", "Status mismatch"
    HELD_OR_VOIDED_SETTLED = "held_or_voided_settled", "Held or voided payment reported as settled"
    DUPLICATE_ROW = "duplicate_row", "Duplicate report row"


class DiscrepancyStatus(models.TextChoices):
    """`open` until resolved by a person (with a note) or closed by a later run that no longer finds it."""

    OPEN = "open"
    RESOLVED = "resolved"


class Discrepancy(models.Model):
    """Something the report and our books disagree on, for one processor and day.

    Unique per (processor, report_date, kind, key), so re-runs never duplicate it. `key` identifies the subject:
    `<row type>:<Psp Reference>:<Modification Reference>` for a report row, `payment:<id>` for a missing payment.
    `report_amount`/`our_amount` are minor units of `report_currency`/`our_currency` (None when that side has
    none). `run` is the run that first found it.
    """

    processor = models.CharField(max_length=32)
    report_date = models.DateField()
    kind = models.CharField(max_length=32, choices=DiscrepancyKind.choices)
    key = models.CharField(max_length=200)
    run = models.ForeignKey(ReconciliationRun, on_delete=models.PROTECT, related_name="discrepancies")
    payment = models.ForeignKey(
        "payments.Payment", null=True, blank=True, on_delete=models.PROTECT, related_name="discrepancies"
    )
    row_type = models.CharField(max_length=32, blank=True)
    psp_reference = models.CharField(max_length=64, blank=True)
    modification_reference = models.CharField(max_length=64, blank=True)
    report_amount = models.BigIntegerField(null=True, blank=True)
    report_currency = models.CharField(max_length=3, blank=True)
    our_amount = models.BigIntegerField(null=True, blank=True)
    our_currency = models.CharField(max_length=3, blank=True)
    our_status = models.CharField(max_length=32, blank=True)
    detail = models.CharField(max_length=500)
    status = models.CharField(max_length=10, choices=DiscrepancyStatus.choices, default=DiscrepancyStatus.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.CharField(max_length=150, blank=True)
    resolution_note = models.TextField(blank=True)

    class Meta:
        verbose_name_plural = "discrepancies"
        permissions = [("resolve_discrepancy", "Can resolve reconciliation discrepancies")]
        constraints = [
            models.UniqueConstraint(
                fields=["processor", "report_date", "kind", "key"], name="discrepancy_once_per_subject"
            ),
        ]
        indexes = [models.Index(fields=["processor", "report_date", "status"], name="discrepancy_day_status")]
        triggers = [pgtrigger.Protect(name="discrepancy_no_delete", operation=pgtrigger.Delete)]

    def __str__(self) -> str:
        return f"#{self.pk} {self.kind} {self.key} ({self.status})"
