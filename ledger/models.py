"""Ledger tables: accounts, ledger transactions, entries. Rows are append-only (PostgreSQL triggers enforce it).

Entries follow TigerBeetle's two-phase model. Each entry has a side (debit/credit), a phase (`pending` for holds,
else posted) and an amount in minor units. A hold's entries are pending; resolving the hold (post or void) adds
pending entries with the negated amounts, which releases it, plus posted entries for what is captured. Balances
are therefore plain sums over entries, and nothing is ever updated.
"""

from __future__ import annotations

import pgtrigger
from django.db import models

from ledger.contracts import AccountPurpose, AccountType, Side


class Account(models.Model):
    """A ledger account: one owner, one purpose, one currency (ISO 4217, upper case).

    `owner` is `platform` or an opaque owner string from the caller (payments uses `merchant:<id>`).
    """

    owner = models.CharField(max_length=64)
    purpose = models.CharField(max_length=32, choices=[(p.value, p.value) for p in AccountPurpose])
    type = models.CharField(max_length=16, choices=[(t.value, t.value) for t in AccountType])
    currency = models.CharField(max_length=3)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "ledger_account"
        constraints = [
            models.UniqueConstraint(fields=["owner", "purpose", "currency"], name="ledger_account_unique_purpose"),
        ]
        triggers = [
            pgtrigger.Protect(name="ledger_account_no_delete", operation=pgtrigger.Delete),
        ]

    def __str__(self) -> str:
        return f"{self.owner}:{self.purpose}:{self.currency}"


class LedgerTransaction(models.Model):
    """An immutable ledger transaction: why (`code`), about what (`reference`), and two or more entries.

    `kind` is `posted` (plain), `pending` (a hold), `post_pending` or `void_pending` (resolves `pending_of`).
    `pending_of` is unique, so a hold resolves at most once, whatever the callers do.
    `idempotency_key` is unique, so the same business step never posts twice.
    """

    class Kind(models.TextChoices):
        POSTED = "posted"
        PENDING = "pending"
        POST_PENDING = "post_pending"
        VOID_PENDING = "void_pending"

    code = models.CharField(max_length=32)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    reference = models.CharField(max_length=128, db_index=True)
    idempotency_key = models.CharField(max_length=200, unique=True)
    pending_of = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="resolution"
    )
    reverses = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversals")
    description = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        db_table = "ledger_transaction"
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(kind__in=["post_pending", "void_pending"], pending_of__isnull=False)
                    | models.Q(kind__in=["posted", "pending"], pending_of__isnull=True)
                ),
                name="ledger_transaction_resolution_points_to_hold",
            ),
        ]
        triggers = [
            pgtrigger.Protect(name="ledger_transaction_append_only", operation=pgtrigger.Update | pgtrigger.Delete),
            # Deferred to commit: by then every entry of the ledger transaction is written.
            pgtrigger.Trigger(
                name="ledger_transaction_has_entries",
                when=pgtrigger.After,
                operation=pgtrigger.Insert,
                timing=pgtrigger.Deferred,
                func="""
                    IF (SELECT count(*) FROM ledger_entry WHERE transaction_id = NEW.id) < 2 THEN
                        RAISE EXCEPTION 'ledger transaction % has fewer than two entries', NEW.id
                            USING ERRCODE = 'check_violation';
                    END IF;
                    RETURN NULL;
                """,
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.reference} (#{self.pk})"


class Entry(models.Model):
    """One debit or credit of a ledger transaction, in integer minor units.

    `amount` is positive, except on the pending entries that release a hold, which carry the hold's amount
    negated. Within a ledger transaction, debits equal credits per currency and phase (checked at commit).
    """

    transaction = models.ForeignKey(LedgerTransaction, on_delete=models.PROTECT, related_name="entries")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="entries")
    side = models.CharField(max_length=6, choices=[(s.value, s.value) for s in Side])
    pending = models.BooleanField(default=False)
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)

    class Meta:
        db_table = "ledger_entry"
        indexes = [models.Index(fields=["account", "pending"], name="ledger_entry_account_phase")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount__gt=0) | models.Q(pending=True, amount__lt=0),
                name="ledger_entry_amount_sign",
            ),
        ]
        triggers = [
            pgtrigger.Protect(name="ledger_entry_append_only", operation=pgtrigger.Update | pgtrigger.Delete),
            pgtrigger.Trigger(
                name="ledger_entry_balanced",
                when=pgtrigger.After,
                operation=pgtrigger.Insert,
                timing=pgtrigger.Deferred,
                func="""
                    IF EXISTS (
                        SELECT 1 FROM ledger_entry
                        WHERE transaction_id = NEW.transaction_id
                        GROUP BY currency, pending
                        HAVING sum(CASE WHEN side = 'debit' THEN amount ELSE -amount END) <> 0
                    ) THEN
                        RAISE EXCEPTION 'ledger transaction % does not balance per currency', NEW.transaction_id
                            USING ERRCODE = 'check_violation';
                    END IF;
                    RETURN NULL;
                """,
            ),
        ]

    def __str__(self) -> str:
        phase = " pending" if self.pending else ""
        return f"{self.side} {self.amount} {self.currency}{phase} → {self.account}"
