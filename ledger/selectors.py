"""Ledger read services: balances and ledger transactions by reference."""

from __future__ import annotations

from django.db.models import Q, Sum

from ledger.contracts import AccountRef, AccountType, Balance, Side
from ledger.models import Account, Entry, LedgerTransaction


def _sums(account_ids: list[int]) -> dict[tuple[int, str, bool], int]:
    rows = (
        Entry.objects.filter(account_id__in=account_ids)
        .values("account_id", "side", "pending")
        .annotate(total=Sum("amount"))
    )
    return {(r["account_id"], r["side"], r["pending"]): int(r["total"]) for r in rows}


def _balance_of(account: Account, sums: dict[tuple[int, str, bool], int]) -> Balance:
    def s(side: Side, pending: bool) -> int:
        return sums.get((account.pk, side.value, pending), 0)

    debit_normal = AccountType(account.type).debit_normal
    normal, contra = (Side.DEBIT, Side.CREDIT) if debit_normal else (Side.CREDIT, Side.DEBIT)
    posted = s(normal, False) - s(contra, False)
    pending = s(normal, True) - s(contra, True)
    available = posted - s(contra, True)
    return Balance(currency=account.currency, posted=posted, pending=pending, available=available)


def balance_get(*, ref: AccountRef) -> Balance:
    """Balances of one account in minor units (zeros when the account was never used).

    `posted`: posted credits − debits (credit-normal) or debits − credits (debit-normal).
    `pending`: the same over open holds. `available`: `posted` minus outgoing holds.
    """
    account = Account.objects.filter(owner=ref.owner, purpose=ref.purpose, currency=ref.currency).first()
    if account is None:
        return Balance(currency=ref.currency, posted=0, pending=0, available=0)
    return _balance_of(account, _sums([account.pk]))


def balances_for_owner(*, owner: str) -> dict[tuple[str, str], Balance]:
    """All balances of `owner`'s accounts, keyed by (purpose, currency)."""
    accounts = list(Account.objects.filter(owner=owner))
    sums = _sums([a.pk for a in accounts])
    return {(a.purpose, a.currency): _balance_of(a, sums) for a in accounts}


def transactions_for_reference(*, reference: str) -> list[LedgerTransaction]:
    """Ledger transactions recorded for `reference`, oldest first, with entries and accounts prefetched."""
    return list(
        LedgerTransaction.objects.filter(reference=reference).prefetch_related("entries__account").order_by("id")
    )


def hold_for_reference(*, reference: str, code: str) -> LedgerTransaction | None:
    """The hold (pending ledger transaction) with `code` recorded for `reference`, or None."""
    return (
        LedgerTransaction.objects.filter(reference=reference, code=code, kind=LedgerTransaction.Kind.PENDING)
        .order_by("id")
        .first()
    )


def unbalanced_transactions() -> list[int]:
    """Ids of ledger transactions whose debits and credits differ per currency and phase (should be empty)."""
    rows = Entry.objects.values("transaction_id", "currency", "pending").annotate(
        debits=Sum("amount", filter=Q(side=Side.DEBIT)),
        credits=Sum("amount", filter=Q(side=Side.CREDIT)),
    )
    return sorted({r["transaction_id"] for r in rows if (r["debits"] or 0) != (r["credits"] or 0)})
