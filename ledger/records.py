"""Ledger models → the contracts the ledger's services and selectors return (ledger.contracts). Internal.

Building a record reads only what is already loaded: entries with their accounts (`select_related("account")` or
objects the caller just created), never another query.
"""

from __future__ import annotations

from collections.abc import Iterable

from ledger.contracts import (
    AccountPurpose,
    AccountRecord,
    AccountRef,
    AccountType,
    EntryRecord,
    Side,
    TransactionKind,
    TransactionRecord,
)
from ledger.models import Account, Entry, LedgerTransaction


def account_record(account: Account) -> AccountRecord:
    """The AccountRecord of `account`."""
    return AccountRecord(
        id=account.pk,
        owner=account.owner,
        purpose=AccountPurpose(account.purpose),
        type=AccountType(account.type),
        currency=account.currency,
        balance_shards=account.balance_shards,
    )


def entry_record(entry: Entry) -> EntryRecord:
    """The EntryRecord of `entry` (its account must be loaded)."""
    account = entry.account
    return EntryRecord(
        account=AccountRef(owner=account.owner, purpose=AccountPurpose(account.purpose), currency=account.currency),
        side=Side(entry.side),
        pending=entry.pending,
        amount=entry.amount,
        currency=entry.currency,
    )


def transaction_record(txn: LedgerTransaction, entries: Iterable[Entry]) -> TransactionRecord:
    """The TransactionRecord of `txn` with `entries` (its entries, accounts loaded, in id order)."""
    return TransactionRecord(
        id=txn.pk,
        code=txn.code,
        kind=TransactionKind(txn.kind),
        reference=txn.reference,
        idempotency_key=txn.idempotency_key,
        description=txn.description,
        created_at=txn.created_at,
        pending_of_id=txn.pending_of_id,
        reverses_id=txn.reverses_id,
        entries=tuple(entry_record(e) for e in entries),
    )
