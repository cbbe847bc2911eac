"""Ledger write services: open accounts, post ledger transactions, create and resolve pending transactions,
reverse. (Sealing the hash chain and verification runs: ledger.sealing. Amounts and currencies: ledger.money.)

Callers pass `AccountRef`/`Leg` values and idempotency keys, and get `TransactionRecord`/`AccountRecord` values
back (ledger.contracts), never ledger models; a pending transaction to resolve, or a ledger transaction to
reverse, is named by its idempotency key and looked up here. Every posting service runs inside the caller's
database transaction when there is one (so a payment's state change and its ledger transaction commit together)
and is idempotent on `idempotency_key`: posting the same key again with the same content returns the existing
ledger transaction (the same record) and writes nothing; the same key with different content raises
IdempotencyConflict (TigerBeetle's rule for transfer ids).

Concurrency (docs/ledger.md, "No hot rows"): a posting locks only the balance rows it changes, through the
`ledger_entry_updates_balance` trigger, in account order. A merchant's account has one balance row; a platform
account has LEDGER_BALANCE_SHARDS rows and each ledger transaction lands on one of them (id modulo the count), so
parallel postings to the platform's processor receivable rarely wait for each other. `no_overdraft=` locks the
named accounts' rows first and refuses a posting that would take their available balance below zero: exact,
because everyone changing those rows waits for the lock. The hash chain is extended by
`ledger.sealing.chain_seal` (a periodic task), never in the posting path.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

from django.db import IntegrityError, transaction
from django.db.models import Q

from ledger.accounts import account_key, account_open, accounts_for
from ledger.contracts import AccountPurpose, AccountRecord, AccountRef, AccountType, Leg, Side, TransactionRecord
from ledger.errors import (
    HoldAlreadyResolved,
    HoldAmountExceeded,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidAmount,
    NotAHold,
    NotReversible,
    TransactionNotFound,
    UnbalancedTransaction,
)
from ledger.models import Account, AccountBalance, Entry, LedgerTransaction
from ledger.money import MAX_AMOUNT, currency_exponent
from ledger.records import account_record, transaction_record


def account_get_or_create(*, ref: AccountRef, balance_shards: int | None = None) -> AccountRecord:
    """Return the standard account named by `ref`, opening it (with its balance rows) on first use.

    Safe under concurrency (a unique constraint decides the race). `balance_shards` overrides the default (1 row
    for a merchant's account, LEDGER_BALANCE_SHARDS for the platform's) for a new account only; an existing
    account keeps its own. Raises InvalidAmount for an invalid currency, ValueError for an unknown purpose or a
    shard count below 1.
    """
    return account_record(account_open(ref=ref, balance_shards=balance_shards))


def _check_amount(amount: object) -> None:
    if not isinstance(amount, int) or isinstance(amount, bool) or not 0 < amount <= MAX_AMOUNT:
        raise InvalidAmount(f"leg amount must be an integer of minor units in 1 … {MAX_AMOUNT}, got {amount!r}")


def _check_legs(legs: Sequence[Leg]) -> None:
    if len(legs) < 2:
        raise UnbalancedTransaction("a ledger transaction needs at least two legs")
    totals: dict[str, int] = defaultdict(int)
    for leg in legs:
        _check_amount(leg.amount)
        currency_exponent(leg.account.currency)
        totals[leg.account.currency] += leg.amount if leg.side == Side.DEBIT else -leg.amount
    unbalanced = {c: t for c, t in totals.items() if t != 0}
    if unbalanced:
        raise UnbalancedTransaction(f"debits and credits differ per currency: {unbalanced}")


#: One entry to write: (account, side, pending phase?, signed amount in minor units).
_EntrySpec = tuple[AccountRef, Side, bool, int]


def _lookup(idempotency_key: str) -> tuple[LedgerTransaction, list[Entry]]:
    """The ledger transaction with `idempotency_key` and its entries (accounts loaded) in id order, in one query.

    Raises TransactionNotFound when there is none (a committed ledger transaction always has entries).
    """
    entries = list(
        Entry.objects.filter(transaction__idempotency_key=idempotency_key)
        .select_related("transaction", "account")
        .order_by("id")
    )
    if not entries:
        raise TransactionNotFound(f"no ledger transaction has idempotency key {idempotency_key!r}")
    return entries[0].transaction, entries


def _existing(idempotency_key: str) -> LedgerTransaction | None:
    return LedgerTransaction.objects.filter(idempotency_key=idempotency_key).first()


def _same_content(
    txn: LedgerTransaction,
    stored_entries: Sequence[Entry],
    *,
    code: str,
    kind: str,
    reference: str,
    pending_of: LedgerTransaction | None,
    reverses: LedgerTransaction | None,
    entries: Sequence[_EntrySpec],
) -> bool:
    if (txn.code, txn.kind, txn.reference) != (code, kind, reference):
        return False
    if txn.pending_of_id != (pending_of.pk if pending_of else None):
        return False
    if txn.reverses_id != (reverses.pk if reverses else None):
        return False
    stored = sorted(
        (e.account.owner, e.account.purpose, e.currency, e.side, e.pending, e.amount) for e in stored_entries
    )
    wanted = sorted((r.owner, str(AccountPurpose(r.purpose)), r.currency, str(s), p, a) for r, s, p, a in entries)
    return stored == wanted


def _replay(
    txn: LedgerTransaction,
    *,
    code: str,
    kind: str,
    reference: str,
    pending_of: LedgerTransaction | None = None,
    reverses: LedgerTransaction | None = None,
    entries: Sequence[_EntrySpec],
) -> TransactionRecord:
    stored = list(txn.entries.select_related("account").order_by("id"))
    if not _same_content(
        txn,
        stored,
        code=code,
        kind=kind,
        reference=reference,
        pending_of=pending_of,
        reverses=reverses,
        entries=entries,
    ):
        raise IdempotencyConflict(
            f"idempotency key {txn.idempotency_key!r} was used for ledger transaction {txn.pk} with other content"
        )
    return transaction_record(txn, stored)


def _lock_and_check(
    *,
    txn: LedgerTransaction,
    accounts: dict[tuple[str, str, str], Account],
    entries: Sequence[_EntrySpec],
    no_overdraft: Sequence[AccountRef],
) -> None:
    """Lock every balance row this posting will change, plus all rows of the guarded accounts, in (account,
    shard) order (the order the entry trigger uses), then refuse the posting if it would take a guarded account's
    available balance below zero."""
    guarded = {accounts[account_key(r)].pk for r in no_overdraft}
    rows: set[tuple[int, int]] = set()
    for ref, *_ in entries:
        account = accounts[account_key(ref)]
        if account.pk not in guarded:
            rows.add((account.pk, txn.pk % account.balance_shards))
    query = Q(account_id__in=guarded)
    for account_id, shard in rows:
        query |= Q(account_id=account_id, shard=shard)
    locked = list(AccountBalance.objects.select_for_update().filter(query).order_by("account_id", "shard"))
    for ref in no_overdraft:
        account = accounts[account_key(ref)]
        available_before = _available(account, [b for b in locked if b.account_id == account.pk])
        delta = AccountBalance(account=account, shard=0)
        for entry_ref, side, pending, amount in entries:
            if account_key(entry_ref) == account_key(ref):
                _add(delta, side=side, pending=pending, amount=amount)
        available_after = _available(account, [b for b in locked if b.account_id == account.pk] + [delta])
        if available_after < 0 and available_after < available_before:
            raise InsufficientFunds(
                f"{ref.owner}:{ref.purpose}:{ref.currency} has {available_before} available; "
                f"this posting would leave {available_after}"
            )


def _add(balance: AccountBalance, *, side: Side, pending: bool, amount: int) -> None:
    field = f"{'pending' if pending else 'posted'}_{'debits' if side == Side.DEBIT else 'credits'}"
    setattr(balance, field, getattr(balance, field) + amount)


def _available(account: Account, rows: Sequence[AccountBalance]) -> int:
    """`posted` minus outgoing pending amounts, on the account's normal side (as ledger.selectors computes it)."""
    pd = sum(r.posted_debits for r in rows)
    pc = sum(r.posted_credits for r in rows)
    hd = sum(r.pending_debits for r in rows)
    hc = sum(r.pending_credits for r in rows)
    if AccountType(account.type).debit_normal:
        return (pd - pc) - hc
    return (pc - pd) - hd


def _write(
    *,
    code: str,
    kind: str,
    reference: str,
    idempotency_key: str,
    entries: Sequence[_EntrySpec],
    pending_of: LedgerTransaction | None = None,
    reverses: LedgerTransaction | None = None,
    description: str = "",
    no_overdraft: Sequence[AccountRef] = (),
    on_conflict: Callable[[], None] | None = None,
) -> TransactionRecord:
    """Insert one ledger transaction and its entries (sorted by account, so balance rows lock in one order).

    Idempotency rests on the unique indexes, not on a look-up first (one round trip less per posting): when the
    key exists (a retry, or a concurrent posting that won), the savepoint is rolled back and the existing ledger
    transaction is replayed (returned if its content is the same, IdempotencyConflict if not); otherwise
    `on_conflict` may turn the violation into a domain error (a pending transaction already resolved, a reversal
    repeated).
    """
    try:
        with transaction.atomic():
            accounts = accounts_for([ref for ref, *_ in entries] + list(no_overdraft))
            txn = LedgerTransaction.objects.create(
                code=code,
                kind=kind,
                reference=reference,
                idempotency_key=idempotency_key,
                pending_of=pending_of,
                reverses=reverses,
                description=description,
            )
            if no_overdraft:
                _lock_and_check(txn=txn, accounts=accounts, entries=entries, no_overdraft=no_overdraft)
            rows = sorted(
                (
                    Entry(
                        transaction=txn,
                        account=accounts[account_key(ref)],
                        side=side,
                        pending=pending,
                        amount=amount,
                        currency=ref.currency,
                    )
                    for ref, side, pending, amount in entries
                ),
                key=lambda e: (e.account.pk, e.pending, e.side),
            )
            Entry.objects.bulk_create(rows)
        return transaction_record(txn, rows)
    except IntegrityError:
        existing = _existing(idempotency_key)
        if existing is not None:
            return _replay(
                existing,
                code=code,
                kind=kind,
                reference=reference,
                pending_of=pending_of,
                reverses=reverses,
                entries=entries,
            )
        if on_conflict is not None:
            on_conflict()
        raise


def transaction_post(
    *,
    code: str,
    reference: str,
    idempotency_key: str,
    legs: Sequence[Leg],
    description: str = "",
    no_overdraft: Sequence[AccountRef] = (),
) -> TransactionRecord:
    """Post a plain (non-pending) ledger transaction with the given legs; returns its record.

    `legs`: two or more amounts in minor units (1 … MAX_AMOUNT) whose debits equal credits per currency.
    `no_overdraft`: accounts whose available balance (ledger.selectors.balance_get) this posting may not take
    below zero, e.g. the merchant's `available` account for a refund or payout. Their balance rows are locked
    (`SELECT … FOR UPDATE`) before the check, so concurrent checked postings are exact.
    Raises UnbalancedTransaction, InvalidAmount, InsufficientFunds, or IdempotencyConflict when the key was
    used with other content; nothing is written then.
    """
    _check_legs(legs)
    entries: list[_EntrySpec] = [(leg.account, leg.side, False, leg.amount) for leg in legs]
    return _write(
        code=code,
        kind=LedgerTransaction.Kind.POSTED,
        reference=reference,
        idempotency_key=idempotency_key,
        entries=entries,
        description=description,
        no_overdraft=no_overdraft,
    )


def pending_create(
    *,
    code: str,
    reference: str,
    idempotency_key: str,
    debit: AccountRef,
    credit: AccountRef,
    amount: int,
    description: str = "",
    no_overdraft: Sequence[AccountRef] = (),
) -> TransactionRecord:
    """Create a pending ledger transaction (the first phase of a two-phase transfer) of `amount` minor units from
    `credit` to `debit`.

    It moves nothing posted; it shows in the pending balances of both accounts until `pending_post` or
    `pending_void` resolves it (TigerBeetle's two-phase transfer), and reduces the available balance of the account
    it would take from (`debit` when that is a credit-normal account, `credit` when debit-normal). `no_overdraft`
    names accounts whose available balance the pending transaction may not take below zero (locked and checked as
    in `transaction_post`). Returns its record; `pending_post`/`pending_void` name it by `idempotency_key`.
    Raises InvalidAmount, UnbalancedTransaction, InsufficientFunds or IdempotencyConflict.
    """
    legs = [Leg(account=debit, side=Side.DEBIT, amount=amount), Leg(account=credit, side=Side.CREDIT, amount=amount)]
    _check_legs(legs)
    entries: list[_EntrySpec] = [(leg.account, leg.side, True, leg.amount) for leg in legs]
    return _write(
        code=code,
        kind=LedgerTransaction.Kind.PENDING,
        reference=reference,
        idempotency_key=idempotency_key,
        entries=entries,
        description=description,
        no_overdraft=no_overdraft,
    )


def _ref(entry: Entry) -> AccountRef:
    return AccountRef(owner=entry.account.owner, purpose=AccountPurpose(entry.account.purpose), currency=entry.currency)


def _resolve(
    *, pending_key: str, kind: str, code: str, reference: str, idempotency_key: str, amount: int
) -> TransactionRecord:
    pending, pending_entries = _lookup(pending_key)
    if pending.kind != LedgerTransaction.Kind.PENDING:
        raise NotAHold(f"ledger transaction {pending.pk} is not a hold")
    pending_amount = pending_entries[0].amount
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0 or amount > pending_amount:
        raise HoldAmountExceeded(f"cannot post {amount!r} of a hold of {pending_amount}")
    entries: list[_EntrySpec] = [(_ref(e), Side(e.side), True, -e.amount) for e in pending_entries]
    if amount:
        entries += [(_ref(e), Side(e.side), False, amount) for e in pending_entries]

    def already_resolved() -> None:
        if LedgerTransaction.objects.filter(pending_of=pending).exists():
            raise HoldAlreadyResolved(f"hold {pending.pk} is already resolved")

    return _write(
        code=code,
        kind=kind,
        reference=reference,
        idempotency_key=idempotency_key,
        entries=entries,
        pending_of=pending,
        on_conflict=already_resolved,
    )


def pending_post(
    *, pending_key: str, amount: int, code: str, reference: str, idempotency_key: str
) -> TransactionRecord:
    """Post `amount` minor units (0 … the pending amount) of the pending ledger transaction created under the
    idempotency key `pending_key` and release the rest, in one ledger transaction (kind `post_pending`); returns
    its record.

    Raises TransactionNotFound when no ledger transaction has `pending_key`, NotAHold when it is not a pending one,
    HoldAlreadyResolved when it was already posted or voided under another idempotency key (the unique
    `pending_of` decides races), HoldAmountExceeded when `amount` is negative or above the pending amount,
    IdempotencyConflict when `idempotency_key` was used with other content.
    """
    return _resolve(
        pending_key=pending_key,
        kind=LedgerTransaction.Kind.POST_PENDING,
        code=code,
        reference=reference,
        idempotency_key=idempotency_key,
        amount=amount,
    )


def pending_void(*, pending_key: str, code: str, reference: str, idempotency_key: str) -> TransactionRecord:
    """Release the pending ledger transaction created under the idempotency key `pending_key` entirely (void or
    expiry; kind `void_pending`); nothing is posted. Returns the record of the release.

    Raises TransactionNotFound when no ledger transaction has `pending_key`, NotAHold when it is not a pending one,
    HoldAlreadyResolved when it was already posted or voided under another idempotency key, IdempotencyConflict
    when `idempotency_key` was used with other content.
    """
    return _resolve(
        pending_key=pending_key,
        kind=LedgerTransaction.Kind.VOID_PENDING,
        code=code,
        reference=reference,
        idempotency_key=idempotency_key,
        amount=0,
    )


def transaction_reverse(
    *,
    original_key: str,
    idempotency_key: str,
    code: str = "reversal",
    reference: str | None = None,
    description: str = "",
    no_overdraft: Sequence[AccountRef] = (),
) -> TransactionRecord:
    """Correct a mistake: post a new ledger transaction with the posted entries of the one created under the
    idempotency key `original_key` on the opposite sides, pointing to it (`reverses`); returns its record. Nothing
    is edited; the original stays as it was.

    `reference` defaults to the original's. A pending transaction cannot be reversed (void it), nor can one
    that moved nothing posted (a void); each is reversed at most once (a unique constraint decides races).
    Raises TransactionNotFound, NotReversible, InsufficientFunds (with `no_overdraft`) or IdempotencyConflict.
    """
    original, original_entries = _lookup(original_key)
    if original.kind == LedgerTransaction.Kind.PENDING:
        raise NotReversible(f"ledger transaction {original.pk} is a hold: void it instead")
    posted = [e for e in original_entries if not e.pending]
    if not posted:
        raise NotReversible(f"ledger transaction {original.pk} moved nothing posted")
    flip = {Side.DEBIT: Side.CREDIT, Side.CREDIT: Side.DEBIT}
    entries: list[_EntrySpec] = [(_ref(e), flip[Side(e.side)], False, e.amount) for e in posted]
    reference = original.reference if reference is None else reference

    def already_reversed() -> None:
        if LedgerTransaction.objects.filter(reverses=original).exists():
            raise NotReversible(f"ledger transaction {original.pk} is already reversed")

    return _write(
        code=code,
        kind=LedgerTransaction.Kind.POSTED,
        reference=reference,
        idempotency_key=idempotency_key,
        entries=entries,
        reverses=original,
        description=description,
        no_overdraft=no_overdraft,
        on_conflict=already_reversed,
    )
