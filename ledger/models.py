"""Ledger tables: accounts, ledger transactions, entries. Rows are append-only (PostgreSQL triggers enforce it).

Entries follow TigerBeetle's two-phase model. Each entry has a side (debit/credit), a phase (`pending` for
pending ledger transactions, else posted) and an amount in minor units. A pending transaction's entries are
pending; resolving it (post or void) adds pending entries with the negated amounts, which releases it, plus posted
entries for what is captured. Balances
are plain sums over entries; the database keeps them in `ledger_balance` rows (sharded for platform accounts, so
no row is hot), and `ledger_verify` re-derives them from the entries. Ledger transactions are chained by SHA-256
hashes in `ledger_seal`, written by a periodic sealer, never in the posting path (docs/ledger.md).
"""

from __future__ import annotations

import pgtrigger
from django.db import models

from ledger.contracts import AccountPurpose, AccountType, Side, TransactionKind


class Account(models.Model):
    """A ledger account: one owner, one purpose, one currency (ISO 4217, upper case).

    `owner` is `platform` or an opaque owner string from the caller (payments uses `merchant:<id>`).
    `balance_shards` is how many `ledger_balance` rows hold its balance: 1 for a merchant's accounts (so a balance
    check can lock it), LEDGER_BALANCE_SHARDS for platform accounts (so parallel postings rarely meet). Accounts
    are never updated or deleted (PostgreSQL triggers).
    """

    owner = models.CharField(max_length=64)
    purpose = models.CharField(max_length=32, choices=[(p.value, p.value) for p in AccountPurpose])
    type = models.CharField(max_length=16, choices=[(t.value, t.value) for t in AccountType])
    currency = models.CharField(max_length=3)
    balance_shards = models.PositiveSmallIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "ledger_account"
        constraints = [
            models.UniqueConstraint(fields=["owner", "purpose", "currency"], name="ledger_account_unique_purpose"),
            models.CheckConstraint(condition=models.Q(balance_shards__gte=1), name="ledger_account_shards_positive"),
        ]
        triggers = [
            pgtrigger.Protect(name="ledger_account_append_only", operation=pgtrigger.Update | pgtrigger.Delete),
        ]

    def __str__(self) -> str:
        return f"{self.owner}:{self.purpose}:{self.currency}"


class LedgerTransaction(models.Model):
    """An immutable ledger transaction: why (`code`), about what (`reference`), and two or more entries.

    `kind` is `posted` (plain), `pending` (two-phase, not yet resolved), `post_pending` or `void_pending`
    (resolves `pending_of`). `pending_of` is unique, so a pending transaction resolves at most once, whatever the
    callers do.
    `reverses` points a correcting ledger transaction at the one it reverses; it is unique (reversed once).
    `idempotency_key` is unique, so the same business step never posts twice.
    """

    class Kind(models.TextChoices):
        POSTED = TransactionKind.POSTED.value
        PENDING = TransactionKind.PENDING.value
        POST_PENDING = TransactionKind.POST_PENDING.value
        VOID_PENDING = TransactionKind.VOID_PENDING.value

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
            models.UniqueConstraint(
                fields=["reverses"], condition=models.Q(reverses__isnull=False), name="ledger_transaction_reversed_once"
            ),
            models.CheckConstraint(
                condition=models.Q(reverses__isnull=True) | models.Q(kind="posted"),
                name="ledger_transaction_reversal_is_posted",
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

    `amount` is positive, except on the pending entries that release a pending transaction, which carry its
    amount negated. Within a ledger transaction, debits equal credits per currency and phase (checked at commit).
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
            # Immediate, row by row, in insertion order (services insert a transaction's entries sorted by
            # account, so two postings take balance rows in the same order and never deadlock). The shard is
            # the ledger transaction id modulo the account's shard count.
            pgtrigger.Trigger(
                name="ledger_entry_updates_balance",
                when=pgtrigger.After,
                operation=pgtrigger.Insert,
                func="""
                    UPDATE ledger_balance SET
                        posted_debits = posted_debits
                            + CASE WHEN NOT NEW.pending AND NEW.side = 'debit' THEN NEW.amount ELSE 0 END,
                        posted_credits = posted_credits
                            + CASE WHEN NOT NEW.pending AND NEW.side = 'credit' THEN NEW.amount ELSE 0 END,
                        pending_debits = pending_debits
                            + CASE WHEN NEW.pending AND NEW.side = 'debit' THEN NEW.amount ELSE 0 END,
                        pending_credits = pending_credits
                            + CASE WHEN NEW.pending AND NEW.side = 'credit' THEN NEW.amount ELSE 0 END
                    WHERE account_id = NEW.account_id
                      AND shard = NEW.transaction_id % (
                          SELECT balance_shards FROM ledger_account WHERE id = NEW.account_id);
                    IF NOT FOUND THEN
                        INSERT INTO ledger_balance
                            (account_id, shard, posted_debits, posted_credits, pending_debits, pending_credits)
                        SELECT a.id, NEW.transaction_id % a.balance_shards,
                            CASE WHEN NOT NEW.pending AND NEW.side = 'debit' THEN NEW.amount ELSE 0 END,
                            CASE WHEN NOT NEW.pending AND NEW.side = 'credit' THEN NEW.amount ELSE 0 END,
                            CASE WHEN NEW.pending AND NEW.side = 'debit' THEN NEW.amount ELSE 0 END,
                            CASE WHEN NEW.pending AND NEW.side = 'credit' THEN NEW.amount ELSE 0 END
                        FROM ledger_account a WHERE a.id = NEW.account_id
                        ON CONFLICT (account_id, shard) DO UPDATE SET
                            posted_debits = ledger_balance.posted_debits + EXCLUDED.posted_debits,
                            posted_credits = ledger_balance.posted_credits + EXCLUDED.posted_credits,
                            pending_debits = ledger_balance.pending_debits + EXCLUDED.pending_debits,
                            pending_credits = ledger_balance.pending_credits + EXCLUDED.pending_credits;
                    END IF;
                    RETURN NULL;
                """,
            ),
        ]

    def __str__(self) -> str:
        phase = " pending" if self.pending else ""
        return f"{self.side} {self.amount} {self.currency}{phase} → {self.account}"


class AccountBalance(models.Model):
    """One shard of an account's stored balance: sums of its entries, in minor units, per side and phase.

    Written only by the `ledger_entry_updates_balance` trigger when an entry is inserted (a direct UPDATE, or an
    INSERT carrying non-zero sums, is refused), so it always equals the sum of the entries; `ledger_verify`
    re-checks that. The balance of an account is the sum of its shards; an entry lands in shard
    `ledger transaction id % account.balance_shards`. Pending sums include the negated entries of releases.
    """

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="balance_rows")
    shard = models.PositiveSmallIntegerField()
    posted_debits = models.BigIntegerField(default=0)
    posted_credits = models.BigIntegerField(default=0)
    pending_debits = models.BigIntegerField(default=0)
    pending_credits = models.BigIntegerField(default=0)

    class Meta:
        db_table = "ledger_balance"
        constraints = [
            models.UniqueConstraint(fields=["account", "shard"], name="ledger_balance_unique_shard"),
        ]
        triggers = [
            pgtrigger.Protect(name="ledger_balance_no_delete", operation=pgtrigger.Delete),
            pgtrigger.Trigger(
                name="ledger_balance_written_by_entries",
                when=pgtrigger.Before,
                operation=pgtrigger.Update | pgtrigger.Insert,
                func="""
                    IF pg_trigger_depth() < 2 AND (
                        TG_OP = 'UPDATE' OR NEW.posted_debits <> 0 OR NEW.posted_credits <> 0
                        OR NEW.pending_debits <> 0 OR NEW.pending_credits <> 0
                    ) THEN
                        RAISE EXCEPTION 'ledger balances change only by inserting ledger entries'
                            USING ERRCODE = 'insufficient_privilege';
                    END IF;
                    RETURN NEW;
                """,
            ),
        ]

    def __str__(self) -> str:
        return f"balance of {self.account_id} shard {self.shard}"


class LedgerSeal(models.Model):
    """One link of the hash chain: ledger transaction `transaction` is the `seq`-th one sealed.

    `content_hash` = SHA-256 of the transaction's canonical content (its fields and entries, ledger.chain);
    `hash` = SHA-256 over (`prev_hash`, `seq`, transaction id, `content_hash`); `prev_hash` is the previous link's
    `hash` (64 zeros for the first). Written by the sealer (ledger.sealing.chain_seal) in chain order; never
    updated or deleted (PostgreSQL triggers).
    """

    seq = models.BigIntegerField(primary_key=True)
    transaction = models.OneToOneField(LedgerTransaction, on_delete=models.PROTECT, related_name="seal")
    content_hash = models.CharField(max_length=64)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)
    sealed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "ledger_seal"
        constraints = [
            models.CheckConstraint(condition=models.Q(seq__gte=1), name="ledger_seal_seq_positive"),
        ]
        triggers = [
            pgtrigger.Protect(name="ledger_seal_append_only", operation=pgtrigger.Update | pgtrigger.Delete),
        ]

    def __str__(self) -> str:
        return f"seal #{self.seq} of {self.transaction_id}"


class VerificationRun(models.Model):
    """The recorded outcome of one ledger verification (`manage.py ledger_verify` or the nightly task).

    `failures` counts broken invariants; `report` holds each check's name, rows examined and failures (at most
    100 listed per check). `head_seq`/`head_hash` is the hash chain's head at the time: later runs check that it
    is still in the chain. Append-only.
    """

    source = models.CharField(max_length=32)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    ok = models.BooleanField()
    failures = models.IntegerField()
    report = models.JSONField()
    head_seq = models.BigIntegerField(default=0)
    head_hash = models.CharField(max_length=64, blank=True)

    class Meta:
        db_table = "ledger_verification_run"
        triggers = [
            pgtrigger.Protect(
                name="ledger_verification_run_append_only", operation=pgtrigger.Update | pgtrigger.Delete
            ),
        ]

    def __str__(self) -> str:
        return f"verification {self.pk} ({'ok' if self.ok else 'FAILED'})"
