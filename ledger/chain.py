"""The ledger's hash chain: canonical content of a ledger transaction and the SHA-256 links between them.

Shared by the sealer (ledger.sealing.chain_seal) and the verifier (ledger.verify), so both hash the same bytes.

- `content_hash` = SHA-256 (FIPS 180-4) of the canonical JSON (RFC 8785-style: sorted keys, no spaces, UTF-8) of
  the ledger transaction's fields and its entries, each entry with its account's owner, purpose, type and
  currency. Editing any of those (an amount, a side, a reference, an account's owner) changes it.
- `link_hash` = SHA-256 of `prev_hash:seq:transaction_id:content_hash`; the first link's `prev_hash` is GENESIS.

Reads go through raw SQL on purpose: what is hashed is what is stored, not what a model would make of it.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from django.db import connection

#: The `prev_hash` of the first link: 64 zeros.
GENESIS = "0" * 64

_TRANSACTION_SQL = """
    SELECT id, code, kind, reference, idempotency_key, pending_of_id, reverses_id, description, created_at
    FROM ledger_transaction WHERE id = ANY(%s)
"""
_ENTRY_SQL = """
    SELECT e.transaction_id, e.id, e.account_id, a.owner, a.purpose, a.type, a.currency, e.currency, e.side,
           e.pending, e.amount
    FROM ledger_entry e JOIN ledger_account a ON a.id = e.account_id
    WHERE e.transaction_id = ANY(%s) ORDER BY e.transaction_id, e.id
"""


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def content_hashes(transaction_ids: Iterable[int]) -> dict[int, str]:
    """SHA-256 hex digests of the canonical content of these ledger transactions, as stored now.

    Ids that do not exist are absent from the result. Two queries, whatever the number of ids.
    """
    ids = list(transaction_ids)
    if not ids:
        return {}
    entries: dict[int, list[list[Any]]] = defaultdict(list)
    with connection.cursor() as cursor:
        cursor.execute(_ENTRY_SQL, [ids])
        for txn_id, entry_id, account_id, owner, purpose, type_, acc_cur, cur, side, pending, amount in cursor:
            entries[txn_id].append(
                [entry_id, account_id, owner, purpose, type_, acc_cur, cur, side, bool(pending), int(amount)]
            )
        cursor.execute(_TRANSACTION_SQL, [ids])
        rows = cursor.fetchall()
    result = {}
    for txn_id, code, kind, reference, key, pending_of, reverses, description, created_at in rows:
        content = {
            "id": txn_id,
            "code": code,
            "kind": kind,
            "reference": reference,
            "idempotency_key": key,
            "pending_of": pending_of,
            "reverses": reverses,
            "description": description,
            "created_at": _iso(created_at),
            "entries": entries.get(txn_id, []),
        }
        result[txn_id] = hashlib.sha256(_canonical(content)).hexdigest()
    return result


def link_hash(*, prev_hash: str, seq: int, transaction_id: int, content_hash: str) -> str:
    """The SHA-256 hex digest that seals ledger transaction `transaction_id` as link `seq` after `prev_hash`."""
    return hashlib.sha256(f"{prev_hash}:{seq}:{transaction_id}:{content_hash}".encode()).hexdigest()
