"""Ledger read services: balances, ledger transactions by reference or owner, the hash chain, verification runs.

Every function returns contracts (ledger.contracts: frozen dataclasses, ints, dicts of them), never models.

Balances come from the stored `ledger_balance` rows (sums kept by a trigger on every entry insert; a platform
account's shards are added up), so a read costs one row per shard, however long the ledger.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from django.conf import settings
from django.db import connection
from django.db.models import Count, Prefetch, Q, Sum
from django.utils import timezone

from ledger import chain
from ledger.contracts import (
    AccountPurpose,
    AccountRef,
    AccountType,
    Balance,
    ChainStatus,
    Movement,
    MovementLine,
    Side,
    TransactionPage,
    TransactionRecord,
    VerificationSummary,
)
from ledger.models import Account, AccountBalance, Entry, LedgerSeal, LedgerTransaction, VerificationRun
from ledger.records import transaction_record

_SUMS = ("posted_debits", "posted_credits", "pending_debits", "pending_credits")


def _sums(account_ids: list[int]) -> dict[int, dict[str, int]]:
    rows = (
        AccountBalance.objects.filter(account_id__in=account_ids)
        .values("account_id")
        .annotate(**{f"t_{name}": Sum(name) for name in _SUMS})
    )
    return {r["account_id"]: {name: int(r[f"t_{name}"] or 0) for name in _SUMS} for r in rows}


def _balance_of(account: Account, sums: dict[int, dict[str, int]]) -> Balance:
    s = sums.get(account.pk, dict.fromkeys(_SUMS, 0))
    if AccountType(account.type).debit_normal:
        posted = s["posted_debits"] - s["posted_credits"]
        pending = s["pending_debits"] - s["pending_credits"]
        outgoing = s["pending_credits"]
    else:
        posted = s["posted_credits"] - s["posted_debits"]
        pending = s["pending_credits"] - s["pending_debits"]
        outgoing = s["pending_debits"]
    return Balance(currency=account.currency, posted=posted, pending=pending, available=posted - outgoing)


def balance_get(*, ref: AccountRef) -> Balance:
    """Balances of one account in minor units, on its normal side (zeros when the account was never used).

    `posted`: posted credits − debits (credit-normal) or debits − credits (debit-normal).
    `pending`: the same over open pending transactions. `available`: `posted` minus outgoing pending amounts.
    Read from the stored balance rows (one per shard): exact as of the query's snapshot.
    """
    account = Account.objects.filter(owner=ref.owner, purpose=ref.purpose, currency=ref.currency).first()
    if account is None:
        return Balance(currency=ref.currency, posted=0, pending=0, available=0)
    return _balance_of(account, _sums([account.pk]))


def balances_for_owner(*, owner: str) -> dict[tuple[str, str], Balance]:
    """All balances of `owner`'s accounts, keyed by (purpose, currency); minor units as in `balance_get`."""
    accounts = list(Account.objects.filter(owner=owner))
    sums = _sums([a.pk for a in accounts])
    return {(a.purpose, a.currency): _balance_of(a, sums) for a in accounts}


def transactions_for_reference(*, reference: str) -> list[TransactionRecord]:
    """Ledger transactions recorded for `reference`, oldest first, each with its entries (in id order). Two
    queries, however many there are."""
    entries = Prefetch("entries", queryset=Entry.objects.select_related("account").order_by("id"))
    txns = LedgerTransaction.objects.filter(reference=reference).prefetch_related(entries).order_by("id")
    return [transaction_record(t, t.entries.all()) for t in txns]


def transaction_page_for_owner(
    *, owner: str, limit: int, starting_after: int | None = None, ending_before: int | None = None
) -> TransactionPage:
    """One page of the ids of ledger transactions with at least one entry on an account of `owner`, newest first.

    At most `limit` ids: the newest ones; with `starting_after`, the newest below that id (the next, older page);
    with `ending_before`, the oldest above that id (the previous page), still listed newest first. `has_more`:
    more ids lie beyond the page in the direction paged (older, or newer with `ending_before`). Give at most one
    of the two cursors.
    """
    touched = LedgerTransaction.objects.filter(
        id__in=Entry.objects.filter(account__owner=owner).values("transaction_id")
    )
    if ending_before:
        ids = list(touched.filter(pk__gt=ending_before).order_by("pk").values_list("pk", flat=True)[: limit + 1])
        return TransactionPage(ids=tuple(reversed(ids[:limit])), has_more=len(ids) > limit)
    if starting_after:
        touched = touched.filter(pk__lt=starting_after)
    ids = list(touched.order_by("-pk").values_list("pk", flat=True)[: limit + 1])
    return TransactionPage(ids=tuple(ids[:limit]), has_more=len(ids) > limit)


def movements_for_owner(*, owner: str, transaction_ids: Iterable[int]) -> dict[int, list[Movement]]:
    """How each of these ledger transactions moved `owner`'s balances, one Movement per currency it touched.

    Amounts in minor units on the normal side of `owner`'s accounts (credit-normal for a merchant's: a credit
    is +). `fee` is what the platform's `fees` accounts earned in the same ledger transaction. Ledger
    transactions that do not touch `owner` are absent.
    """
    ids = list(transaction_ids)
    if not ids:
        return {}
    txns = {t.pk: t for t in LedgerTransaction.objects.filter(pk__in=ids)}
    entries = (
        Entry.objects.filter(transaction_id__in=ids)
        .filter(Q(account__owner=owner) | Q(account__purpose=AccountPurpose.FEES))
        .select_related("account")
        .order_by("id")
    )
    lines: dict[tuple[int, str], dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    fees: dict[tuple[int, str], int] = defaultdict(int)
    for e in entries:
        sign = 1 if (e.side == Side.DEBIT) == AccountType(e.account.type).debit_normal else -1
        if e.account.owner == owner:
            lines[(e.transaction_id, e.currency)][e.account.purpose][1 if e.pending else 0] += sign * e.amount
        elif not e.pending:
            fees[(e.transaction_id, e.currency)] += sign * e.amount
    result: dict[int, list[Movement]] = defaultdict(list)
    for (txn_id, currency), by_purpose in sorted(lines.items()):
        txn = txns[txn_id]
        net = sum(posted for posted, _ in by_purpose.values())
        fee = fees.get((txn_id, currency), 0)
        result[txn_id].append(
            Movement(
                transaction_id=txn_id,
                code=txn.code,
                kind=txn.kind,
                reference=txn.reference,
                description=txn.description,
                created_at=txn.created_at,
                currency=currency,
                amount=net + fee,
                fee=fee,
                net=net,
                pending=sum(pending for _, pending in by_purpose.values()),
                lines=tuple(
                    MovementLine(purpose=purpose, currency=currency, posted=posted, pending=pending)
                    for purpose, (posted, pending) in sorted(by_purpose.items())
                ),
            )
        )
    return dict(result)


def unbalanced_transactions() -> list[int]:
    """Ids of ledger transactions whose debits and credits differ per currency and phase (should be empty)."""
    rows = Entry.objects.values("transaction_id", "currency", "pending").annotate(
        debits=Sum("amount", filter=Q(side=Side.DEBIT)),
        credits=Sum("amount", filter=Q(side=Side.CREDIT)),
    )
    return sorted({r["transaction_id"] for r in rows if (r["debits"] or 0) != (r["credits"] or 0)})


def chain_status() -> ChainStatus:
    """How far the hash chain reaches: sealed count and head, unsealed count and the age of the oldest (s).

    Counts the unsealed ledger transactions the sealer looks at (ids above the highest sealed one, or created in
    the last LEDGER_SEAL_LOOKBACK seconds): an index range, cheap enough for every metrics scrape. Older unsealed
    ones are `ledger_verify`'s business (`sealed_in_time`).
    """
    head = LedgerSeal.objects.order_by("-seq").values_list("seq", "hash").first()
    max_sealed = LedgerSeal.objects.order_by("-transaction_id").values_list("transaction_id", flat=True).first()
    lookback = float(getattr(settings, "LEDGER_SEAL_LOOKBACK", 3600.0))
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT count(*), min(t.created_at) FROM ledger_transaction t
            WHERE (t.id > %s OR t.created_at >= now() - make_interval(secs => %s))
              AND NOT EXISTS (SELECT 1 FROM ledger_seal s WHERE s.transaction_id = t.id)
            """,
            [max_sealed or 0, lookback],
        )
        unsealed, oldest = cursor.fetchone()
    return ChainStatus(
        sealed=head[0] if head else 0,
        head_seq=head[0] if head else 0,
        head_hash=head[1] if head else chain.GENESIS,
        unsealed=int(unsealed),
        oldest_unsealed_age=max(0.0, (timezone.now() - oldest).total_seconds()) if oldest else 0.0,
    )


def _summary(run: VerificationRun) -> VerificationSummary:
    return VerificationSummary(
        id=run.pk,
        source=run.source,
        ok=run.ok,
        failures=run.failures,
        started_at=run.started_at,
        finished_at=run.finished_at,
        head_seq=run.head_seq,
        head_hash=run.head_hash,
    )


def verification_last(*, ok: bool | None = None) -> VerificationSummary | None:
    """The most recent recorded verification run (only successful ones with `ok=True`), or None."""
    qs = VerificationRun.objects.order_by("-id")
    if ok is not None:
        qs = qs.filter(ok=ok)
    run = qs.first()
    return _summary(run) if run is not None else None


def verification_counts() -> dict[bool, int]:
    """How many recorded verification runs passed (True) and failed (False)."""
    counts = {True: 0, False: 0}
    for row in VerificationRun.objects.values("ok").annotate(n=Count("id")):
        counts[bool(row["ok"])] = int(row["n"])
    return counts
