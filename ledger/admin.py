"""Read-only admin for the ledger: accounts, ledger transactions and their entries. Nothing can be edited or
deleted here (PostgreSQL refuses it anyway)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from ledger.models import Account, AccountBalance, Entry, LedgerSeal, LedgerTransaction, VerificationRun


class ReadOnlyAdmin(admin.ModelAdmin):
    """A ModelAdmin that can only view."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class EntryInline(admin.TabularInline):
    """The entries of a ledger transaction."""

    model = Entry
    fields = ("account", "side", "pending", "amount", "currency")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    """Ledger accounts."""

    list_display = ("id", "owner", "purpose", "type", "currency", "balance_shards", "created_at")
    list_filter = ("purpose", "type", "currency")
    search_fields = ("owner",)


@admin.register(LedgerTransaction)
class LedgerTransactionAdmin(ReadOnlyAdmin):
    """Ledger transactions with their entries."""

    list_display = ("id", "code", "kind", "reference", "created_at")
    list_filter = ("code", "kind")
    search_fields = ("reference", "idempotency_key")
    inlines = [EntryInline]


@admin.register(AccountBalance)
class AccountBalanceAdmin(ReadOnlyAdmin):
    """Stored balance rows (one per shard), kept by a trigger on entry inserts."""

    list_display = ("account", "shard", "posted_debits", "posted_credits", "pending_debits", "pending_credits")
    search_fields = ("account__owner",)


@admin.register(LedgerSeal)
class LedgerSealAdmin(ReadOnlyAdmin):
    """The hash chain: one seal per ledger transaction, in sealing order."""

    list_display = ("seq", "transaction", "hash", "sealed_at")


@admin.register(VerificationRun)
class VerificationRunAdmin(ReadOnlyAdmin):
    """Recorded ledger_verify runs (command and nightly task)."""

    list_display = ("id", "source", "ok", "failures", "started_at", "finished_at", "head_seq")
    list_filter = ("ok", "source")
