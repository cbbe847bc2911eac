"""Ledger invariant checks used by `manage.py ledger_verify`, the nightly task and the tests after traffic.

Every check reads the stored rows directly (SQL), so it also catches what bypassed the services and the
triggers (`ALTER TABLE … DISABLE TRIGGER`, a superuser's UPDATE). A failure names the ledger transaction (or the
account, for a stored balance) that breaks the invariant.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone
from iso4217 import Currency

from ledger import chain

#: Seals re-hashed per query when checking the chain.
CHAIN_BATCH = 2000


@dataclass(kw_only=True)
class CheckResult:
    """The outcome of one invariant: its name, how many rows it examined, and the offending ids."""

    name: str
    description: str
    examined: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no row broke the invariant."""
        return not self.failures


def _rows(sql: str, params: list[object] | None = None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


def _count(sql: str, params: list[object] | None = None) -> int:
    return int(_rows(sql, params)[0][0])


def _balanced() -> CheckResult:
    r = CheckResult(name="balanced", description="debits equal credits per currency and phase")
    r.examined = _count("SELECT count(*) FROM ledger_transaction")
    r.failures = [
        f"ledger transaction {t}: {cur} {'pending' if pending else 'posted'} off by {diff}"
        for t, cur, pending, diff in _rows(
            """
            SELECT transaction_id, currency, pending,
                   sum(CASE WHEN side = 'debit' THEN amount ELSE -amount END) AS diff
            FROM ledger_entry GROUP BY transaction_id, currency, pending
            HAVING sum(CASE WHEN side = 'debit' THEN amount ELSE -amount END) <> 0
            ORDER BY transaction_id
            """
        )
    ]
    return r


def _two_or_more(examined: int) -> CheckResult:
    r = CheckResult(name="two_or_more_entries", description="each ledger transaction has two or more entries")
    r.examined = examined
    r.failures = [
        f"ledger transaction {t} has {n} entries"
        for t, n in _rows(
            """
            SELECT t.id, count(e.id) FROM ledger_transaction t LEFT JOIN ledger_entry e ON e.transaction_id = t.id
            GROUP BY t.id HAVING count(e.id) < 2 ORDER BY t.id
            """
        )
    ]
    return r


def _currencies() -> CheckResult:
    r = CheckResult(
        name="entry_currency",
        description="each entry is in its account's currency, an ISO 4217 currency with minor units",
    )
    r.examined = _count("SELECT count(*) FROM ledger_entry")
    r.failures = [
        f"entry {e} of ledger transaction {t} is in {cur}, its account {a} in {acc_cur}"
        for e, t, cur, a, acc_cur in _rows(
            """
            SELECT e.id, e.transaction_id, e.currency, a.id, a.currency
            FROM ledger_entry e JOIN ledger_account a ON a.id = e.account_id
            WHERE e.currency <> a.currency ORDER BY e.id
            """
        )
    ]
    for account_id, currency in _rows("SELECT min(id), currency FROM ledger_account GROUP BY currency"):
        try:
            exponent = Currency(currency).exponent
        except ValueError:
            exponent = None
        if exponent is None:
            r.failures.append(f"account {account_id} (and any other in {currency}): not an ISO 4217 currency")
    return r


def _pending_resolved_once() -> CheckResult:
    r = CheckResult(
        name="holds_resolve_once",
        description="pending transactions are resolved at most once, and only pending ones are resolved",
    )
    r.examined = _count("SELECT count(*) FROM ledger_transaction WHERE kind = 'pending'")
    r.failures = [
        f"ledger transaction {t} resolves {h}, which is a {kind} transaction"
        for t, h, kind in _rows(
            """
            SELECT r.id, h.id, h.kind FROM ledger_transaction r JOIN ledger_transaction h ON h.id = r.pending_of_id
            WHERE h.kind <> 'pending' ORDER BY r.id
            """
        )
    ] + [
        f"pending ledger transaction {h} resolved {n} times"
        for h, n in _rows(
            """
            SELECT pending_of_id, count(*) FROM ledger_transaction WHERE pending_of_id IS NOT NULL
            GROUP BY pending_of_id HAVING count(*) > 1 ORDER BY 1
            """
        )
    ]
    return r


def _release() -> CheckResult:
    r = CheckResult(
        name="hold_release_exact",
        description="a resolution releases exactly its pending transaction's entries and posts at most their amount",
    )
    r.examined = _count("SELECT count(*) FROM ledger_transaction WHERE pending_of_id IS NOT NULL")
    r.failures = [
        f"ledger transaction {t} leaves {left} of pending transaction {h} unreleased on account {a}"
        for h, t, a, left in _rows(
            """
            SELECT r.pending_of_id, r.id, e.account_id, sum(e.amount)
            FROM ledger_transaction r
            JOIN ledger_entry e ON e.pending AND e.transaction_id IN (r.id, r.pending_of_id)
            WHERE r.pending_of_id IS NOT NULL
            GROUP BY r.pending_of_id, r.id, e.account_id, e.side HAVING sum(e.amount) <> 0
            ORDER BY 2
            """
        )
    ] + [
        f"ledger transaction {t} posts {posted} of pending transaction {h}, which was for {held}"
        for t, h, posted, held in _rows(
            """
            SELECT r.id, r.pending_of_id,
                   (SELECT coalesce(sum(amount), 0) FROM ledger_entry
                    WHERE transaction_id = r.id AND NOT pending AND side = 'debit'),
                   (SELECT coalesce(sum(amount), 0) FROM ledger_entry
                    WHERE transaction_id = r.pending_of_id AND pending AND side = 'debit')
            FROM ledger_transaction r WHERE r.pending_of_id IS NOT NULL
            """
        )
        if posted > held
    ]
    return r


def _pending_not_negative() -> CheckResult:
    r = CheckResult(name="pending_not_negative", description="no account holds a negative pending amount")
    r.examined = _count("SELECT count(*) FROM ledger_account")
    r.failures = [
        f"account {a} ({name}) has {total} {side} pending {cur}"
        for a, name, total, side, cur in _rows(
            """
            SELECT a.id, a.owner || ':' || a.purpose, sum(e.amount), e.side, a.currency
            FROM ledger_entry e JOIN ledger_account a ON a.id = e.account_id
            WHERE e.pending GROUP BY a.id, e.side HAVING sum(e.amount) < 0 ORDER BY a.id
            """
        )
    ]
    return r


def _stored_balances() -> CheckResult:
    r = CheckResult(
        name="stored_balances",
        description="each stored balance row equals the sum of its entries (per account, shard, side and phase)",
    )
    r.examined = _count("SELECT count(*) FROM ledger_balance")
    r.failures = [
        f"account {a} ({name}) shard {shard}: stored {stored}, entries sum to {derived}"
        for a, name, shard, stored, derived in _rows(
            """
            WITH derived AS (
                SELECT e.account_id, e.transaction_id % a.balance_shards AS shard,
                       sum(CASE WHEN NOT e.pending AND e.side = 'debit' THEN e.amount ELSE 0 END) AS pd,
                       sum(CASE WHEN NOT e.pending AND e.side = 'credit' THEN e.amount ELSE 0 END) AS pc,
                       sum(CASE WHEN e.pending AND e.side = 'debit' THEN e.amount ELSE 0 END) AS hd,
                       sum(CASE WHEN e.pending AND e.side = 'credit' THEN e.amount ELSE 0 END) AS hc
                FROM ledger_entry e JOIN ledger_account a ON a.id = e.account_id
                GROUP BY e.account_id, 2
            )
            SELECT coalesce(b.account_id, d.account_id), a.owner || ':' || a.purpose || ':' || a.currency,
                   coalesce(b.shard, d.shard),
                   ARRAY[coalesce(b.posted_debits, 0), coalesce(b.posted_credits, 0),
                         coalesce(b.pending_debits, 0), coalesce(b.pending_credits, 0)]::text,
                   ARRAY[coalesce(d.pd, 0), coalesce(d.pc, 0), coalesce(d.hd, 0), coalesce(d.hc, 0)]::text
            FROM ledger_balance b
            FULL JOIN derived d ON d.account_id = b.account_id AND d.shard = b.shard
            JOIN ledger_account a ON a.id = coalesce(b.account_id, d.account_id)
            WHERE b.account_id IS NULL
               OR coalesce(d.pd, 0) <> b.posted_debits OR coalesce(d.pc, 0) <> b.posted_credits
               OR coalesce(d.hd, 0) <> b.pending_debits OR coalesce(d.hc, 0) <> b.pending_credits
            ORDER BY 1, 3
            """
        )
    ]
    r.failures += [
        f"account {a} has a balance row for shard {shard} of {shards}"
        for a, shard, shards in _rows(
            """
            SELECT b.account_id, b.shard, a.balance_shards FROM ledger_balance b
            JOIN ledger_account a ON a.id = b.account_id WHERE b.shard >= a.balance_shards ORDER BY 1, 2
            """
        )
    ]
    return r


def _reversals() -> CheckResult:
    r = CheckResult(
        name="reversals_mirror",
        description="a reversal posts exactly its original's posted entries on the opposite sides, once",
    )
    r.examined = _count("SELECT count(*) FROM ledger_transaction WHERE reverses_id IS NOT NULL")
    r.failures = [
        f"ledger transaction {t} does not mirror ledger transaction {o} on account {a}"
        for t, o, a in _rows(
            """
            WITH pairs AS (SELECT id, reverses_id FROM ledger_transaction WHERE reverses_id IS NOT NULL),
            net AS (
                SELECT p.id, p.reverses_id, e.account_id,
                       sum(CASE WHEN e.side = 'debit' THEN e.amount ELSE -e.amount END) AS signed
                FROM pairs p JOIN ledger_entry e
                  ON NOT e.pending AND e.transaction_id IN (p.id, p.reverses_id)
                GROUP BY p.id, p.reverses_id, e.account_id
            )
            SELECT id, reverses_id, account_id FROM net WHERE signed <> 0 ORDER BY 1, 3
            """
        )
    ]
    r.failures += [
        f"ledger transaction {o} is reversed {n} times"
        for o, n in _rows(
            """
            SELECT reverses_id, count(*) FROM ledger_transaction WHERE reverses_id IS NOT NULL
            GROUP BY reverses_id HAVING count(*) > 1 ORDER BY 1
            """
        )
    ]
    return r


def _hash_chain(progress: Callable[[int, int], None] | None) -> CheckResult:
    r = CheckResult(
        name="hash_chain",
        description="the SHA-256 chain of sealed ledger transactions is unbroken and matches their content",
    )
    total = _count("SELECT count(*) FROM ledger_seal")
    r.examined = total
    expected_seq, prev, done, after = 1, chain.GENESIS, 0, 0
    if progress is not None:
        progress(0, total)
    while True:
        seals = _rows(
            "SELECT seq, transaction_id, content_hash, prev_hash, hash FROM ledger_seal"
            " WHERE seq > %s ORDER BY seq LIMIT %s",
            [after, CHAIN_BATCH],
        )
        if not seals:
            break
        contents = chain.content_hashes(s[1] for s in seals)
        for seq, txn_id, content_hash, prev_hash, link in seals:
            if seq != expected_seq:
                r.failures.append(f"seals {expected_seq}…{seq - 1} are missing before ledger transaction {txn_id}")
            if prev_hash != prev:
                r.failures.append(f"ledger transaction {txn_id} (seal {seq}) does not link to the previous seal")
            if contents.get(txn_id) != content_hash:
                r.failures.append(f"ledger transaction {txn_id} was changed after it was sealed (seal {seq})")
            if chain.link_hash(prev_hash=prev_hash, seq=seq, transaction_id=txn_id, content_hash=content_hash) != link:
                r.failures.append(f"ledger transaction {txn_id}: seal {seq} does not hash to its stored value")
            expected_seq, prev, after = seq + 1, link, seq
        done += len(seals)
        if progress is not None:
            progress(done, total)
    # The head recorded by earlier verification runs must still be in the chain: truncating or rebuilding the
    # chain from some point on would otherwise go unnoticed.
    for run_id, seq, head in _rows(
        "SELECT DISTINCT ON (head_seq) id, head_seq, head_hash FROM ledger_verification_run"
        " WHERE head_seq > 0 ORDER BY head_seq DESC, id DESC LIMIT 1"
    ):
        stored = _rows("SELECT transaction_id, hash FROM ledger_seal WHERE seq = %s", [seq])
        if not stored:
            r.failures.append(f"seal {seq}, the chain head at verification run {run_id}, is gone")
        elif stored[0][1] != head:
            r.failures.append(
                f"ledger transaction {stored[0][0]}: seal {seq} differs from the head recorded by run {run_id}"
            )
    return r


def _sealed_in_time() -> CheckResult:
    grace = float(getattr(settings, "LEDGER_SEAL_GRACE", 3600.0))
    r = CheckResult(
        name="sealed_in_time",
        description=f"every ledger transaction older than {grace:g} s is in the hash chain",
    )
    cutoff = timezone.now() - timedelta(seconds=grace)
    r.examined = _count("SELECT count(*) FROM ledger_transaction WHERE created_at < %s", [cutoff])
    r.failures = [
        f"ledger transaction {t} (created {created:%Y-%m-%d %H:%M:%S}) is not sealed"
        for t, created in _rows(
            """
            SELECT t.id, t.created_at FROM ledger_transaction t
            WHERE t.created_at < %s AND NOT EXISTS (SELECT 1 FROM ledger_seal s WHERE s.transaction_id = t.id)
            ORDER BY t.id LIMIT 1000
            """,
            [cutoff],
        )
    ]
    return r


def run_checks(*, progress: Callable[[int, int], None] | None = None) -> list[CheckResult]:
    """Run every ledger invariant check against the database and return their results, in this order.

    (The names are recorded in every verification run and read by operators, so `holds_resolve_once` and
    `hold_release_exact` keep the older word for a pending ledger transaction.)

    - `balanced`: each ledger transaction's debits equal its credits per currency and phase;
    - `two_or_more_entries`;
    - `entry_currency`: each entry is in its account's currency, an ISO 4217 one with minor units;
    - `holds_resolve_once`: pending transactions are resolved at most once, and only pending ones are resolved;
    - `hold_release_exact`: a resolution releases exactly its pending transaction's entries, posting ≤ their
      amount;
    - `pending_not_negative`: no account holds a negative pending amount;
    - `stored_balances`: each `ledger_balance` row equals the sum of its entries;
    - `reversals_mirror`: each reversal mirrors its original's posted entries, and nothing is reversed twice;
    - `hash_chain`: seals are contiguous, each links to the previous one, re-hashing each sealed ledger
      transaction gives its recorded content hash, and the head recorded by the last verification run is still
      there. `progress(done, total)` is called per batch of re-hashed seals;
    - `sealed_in_time`: nothing older than LEDGER_SEAL_GRACE seconds is left unsealed.
    """
    balanced = _balanced()
    return [
        balanced,
        _two_or_more(balanced.examined),
        _currencies(),
        _pending_resolved_once(),
        _release(),
        _pending_not_negative(),
        _stored_balances(),
        _reversals(),
        _hash_chain(progress),
        _sealed_in_time(),
    ]
