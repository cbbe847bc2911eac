"""Ledger invariant checks used by `manage.py ledger_verify` (and by tests after traffic)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import connection


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


def _rows(sql: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return list(cursor.fetchall())


def _count(sql: str) -> int:
    return int(_rows(sql)[0][0])


def run_checks() -> list[CheckResult]:
    """Run every ledger invariant check against the database and return their results.

    Checks: each ledger transaction balances per currency and phase; each has two or more entries; every
    entry's currency is its account's; holds resolve at most once and only holds are resolved; a resolution
    releases exactly the hold's pending entries; no account's pending balance is negative.
    """
    results: list[CheckResult] = []

    balanced = CheckResult(name="balanced", description="debits equal credits per currency and phase")
    balanced.examined = _count("SELECT count(*) FROM ledger_transaction")
    balanced.failures = [
        f"ledger transaction {r[0]}: {r[1]} {'pending' if r[2] else 'posted'} off by {r[3]}"
        for r in _rows(
            """
            SELECT transaction_id, currency, pending,
                   sum(CASE WHEN side = 'debit' THEN amount ELSE -amount END) AS diff
            FROM ledger_entry GROUP BY transaction_id, currency, pending
            HAVING sum(CASE WHEN side = 'debit' THEN amount ELSE -amount END) <> 0
            ORDER BY transaction_id
            """
        )
    ]
    results.append(balanced)

    two = CheckResult(name="two_or_more_entries", description="each ledger transaction has two or more entries")
    two.examined = balanced.examined
    two.failures = [
        f"ledger transaction {r[0]} has {r[1]} entries"
        for r in _rows(
            """
            SELECT t.id, count(e.id) FROM ledger_transaction t LEFT JOIN ledger_entry e ON e.transaction_id = t.id
            GROUP BY t.id HAVING count(e.id) < 2 ORDER BY t.id
            """
        )
    ]
    results.append(two)

    cur = CheckResult(name="entry_currency", description="each entry is in its account's currency")
    cur.examined = _count("SELECT count(*) FROM ledger_entry")
    cur.failures = [
        f"entry {r[0]} of ledger transaction {r[1]}"
        for r in _rows(
            """
            SELECT e.id, e.transaction_id FROM ledger_entry e JOIN ledger_account a ON a.id = e.account_id
            WHERE e.currency <> a.currency ORDER BY e.id
            """
        )
    ]
    results.append(cur)

    holds = CheckResult(name="holds_resolve_once", description="holds are resolved at most once, and only holds")
    holds.examined = _count("SELECT count(*) FROM ledger_transaction WHERE kind = 'pending'")
    holds.failures = [
        f"ledger transaction {r[0]} resolves {r[1]}, which is a {r[2]} transaction"
        for r in _rows(
            """
            SELECT r.id, h.id, h.kind FROM ledger_transaction r JOIN ledger_transaction h ON h.id = r.pending_of_id
            WHERE h.kind <> 'pending' ORDER BY r.id
            """
        )
    ] + [
        f"hold {r[0]} resolved {r[1]} times"
        for r in _rows(
            """
            SELECT pending_of_id, count(*) FROM ledger_transaction WHERE pending_of_id IS NOT NULL
            GROUP BY pending_of_id HAVING count(*) > 1
            """
        )
    ]
    results.append(holds)

    release = CheckResult(
        name="hold_release_exact", description="a resolved hold's pending entries net to zero per account"
    )
    release.examined = _count("SELECT count(*) FROM ledger_transaction WHERE pending_of_id IS NOT NULL")
    release.failures = [
        f"hold {r[0]} leaves {r[2]} pending on account {r[1]}"
        for r in _rows(
            """
            SELECT r.pending_of_id, e.account_id, sum(e.amount)
            FROM ledger_transaction r
            JOIN ledger_entry e ON e.pending AND e.transaction_id IN (r.id, r.pending_of_id)
            WHERE r.pending_of_id IS NOT NULL
            GROUP BY r.pending_of_id, e.account_id, e.side HAVING sum(e.amount) <> 0
            ORDER BY 1
            """
        )
    ]
    results.append(release)

    pend = CheckResult(name="pending_not_negative", description="no account holds a negative pending amount")
    pend.examined = _count("SELECT count(*) FROM ledger_account")
    pend.failures = [
        f"account {r[0]} ({r[1]}) has {r[2]} {r[3]} pending {r[4]}"
        for r in _rows(
            """
            SELECT a.id, a.owner || ':' || a.purpose, sum(e.amount), e.side, a.currency
            FROM ledger_entry e JOIN ledger_account a ON a.id = e.account_id
            WHERE e.pending GROUP BY a.id, e.side HAVING sum(e.amount) < 0 ORDER BY a.id
            """
        )
    ]
    results.append(pend)
    return results
