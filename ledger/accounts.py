"""Opening ledger accounts and finding them for a posting, with a per-process cache of committed accounts.

Internal to the ledger: other apps open accounts through ledger.services.account_get_or_create (and never need
to: a posting opens the accounts it names).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q

from ledger.contracts import ACCOUNT_TYPES, MERCHANT_PURPOSES, AccountPurpose, AccountRef
from ledger.models import Account, AccountBalance
from ledger.money import currency_exponent


def default_balance_shards(purpose: AccountPurpose | str) -> int:
    """How many balance rows an account of `purpose` gets: 1 for a merchant's, LEDGER_BALANCE_SHARDS otherwise."""
    if AccountPurpose(purpose) in MERCHANT_PURPOSES:
        return 1
    return int(getattr(settings, "LEDGER_BALANCE_SHARDS", 16))


def account_open(*, ref: AccountRef, balance_shards: int | None = None) -> Account:
    """The account named by `ref`, opened (with its balance rows) on first use; ledger.services.account_get_or_create
    has the rules. Raises InvalidAmount for an invalid currency, ValueError for an unknown purpose or a shard count
    below 1."""
    currency_exponent(ref.currency)
    purpose = AccountPurpose(ref.purpose)
    account = Account.objects.filter(owner=ref.owner, purpose=purpose, currency=ref.currency).first()
    if account is not None:
        return account
    shards = default_balance_shards(purpose) if balance_shards is None else balance_shards
    if shards < 1:
        raise ValueError("balance_shards must be at least 1")
    try:
        with transaction.atomic():
            account = Account.objects.create(
                owner=ref.owner,
                purpose=purpose,
                currency=ref.currency,
                type=ACCOUNT_TYPES[purpose],
                balance_shards=shards,
            )
            AccountBalance.objects.bulk_create([AccountBalance(account=account, shard=i) for i in range(shards)])
            return account
    except IntegrityError:
        return Account.objects.get(owner=ref.owner, purpose=purpose, currency=ref.currency)


#: Accounts this process has seen committed, by (owner, purpose, currency). Accounts are never updated or deleted
#: (PostgreSQL triggers), so an entry never goes stale; only the test suite's flush removes rows, and it clears
#: this cache (`forget_cached_accounts`, connected to post_migrate, which Django's flush sends).
_committed_accounts: dict[tuple[str, str, str], Account] = {}
_MAX_CACHED_ACCOUNTS = 100_000


def forget_cached_accounts(**_: object) -> None:
    """Empty this process's account cache (after the database was flushed or re-created)."""
    _committed_accounts.clear()


def _remember(accounts: dict[tuple[str, str, str], Account]) -> None:
    if len(_committed_accounts) + len(accounts) > _MAX_CACHED_ACCOUNTS:
        _committed_accounts.clear()
    _committed_accounts.update(accounts)


def accounts_for(refs: Iterable[AccountRef]) -> dict[tuple[str, str, str], Account]:
    """The accounts of `refs` keyed by (owner, purpose, currency): from this process's cache of committed
    accounts, else in one query, opening missing ones. What the query found or opened is cached only once the
    transaction commits (an account opened in a transaction that rolls back must never be reused)."""
    wanted = {(r.owner, str(AccountPurpose(r.purpose)), r.currency): r for r in refs}
    found = {key: _committed_accounts[key] for key in wanted if key in _committed_accounts}
    if len(found) == len(wanted):
        return found
    query = Q()
    for owner, purpose, currency in wanted:
        if (owner, purpose, currency) not in found:
            query |= Q(owner=owner, purpose=purpose, currency=currency)
    fetched = {(a.owner, a.purpose, a.currency): a for a in Account.objects.filter(query)}
    for key, ref in wanted.items():
        if key not in found and key not in fetched:
            fetched[key] = account_open(ref=ref)
    transaction.on_commit(lambda: _remember(fetched))
    return found | fetched


def account_key(ref: AccountRef) -> tuple[str, str, str]:
    """How `accounts_for` keys the account of `ref`: (owner, purpose, currency)."""
    return (ref.owner, str(AccountPurpose(ref.purpose)), ref.currency)
