"""Ledger write services: open accounts, post ledger transactions, create and resolve pending transactions,
reverse, seal, verify.

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
because everyone changing those rows waits for the lock. The hash chain is extended by `chain_seal` (a periodic
task), never in the posting path.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from iso4217 import Currency

from ledger import chain, verify
from ledger.contracts import (
    ACCOUNT_TYPES,
    MERCHANT_PURPOSES,
    AccountPurpose,
    AccountRecord,
    AccountRef,
    AccountType,
    CheckReport,
    Leg,
    SealReport,
    Side,
    TransactionRecord,
    VerificationOutcome,
    VerificationSummary,
)
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
from ledger.models import Account, AccountBalance, Entry, LedgerSeal, LedgerTransaction, VerificationRun
from ledger.records import account_record, transaction_record

#: The largest amount of one entry, in minor units (PostgreSQL bigint; far above any card amount).
MAX_AMOUNT = 10**15
#: pg_advisory_xact_lock key that serialises sealers (only sealers take it; postings never do).
SEAL_LOCK_ID = 0x1ED6E5EA1


def currency_exponent(currency: str) -> int:
    """The ISO 4217 minor-unit exponent of `currency` (2 for EUR, 0 for JPY, 3 for BHD), from the iso4217 package.

    Raises InvalidAmount for a code that is not an upper-case ISO 4217 currency with minor units (`XAU`, `ZZZ`).
    """
    if not isinstance(currency, str) or currency != currency.upper():
        raise InvalidAmount(f"{currency!r} is not an upper-case ISO 4217 currency code")
    try:
        exponent = Currency(currency).exponent
    except ValueError as exc:
        raise InvalidAmount(f"{currency!r} is not an ISO 4217 currency code") from exc
    if exponent is None:
        raise InvalidAmount(f"{currency!r} has no minor units and cannot be used for payments")
    return int(exponent)


def minor_units(*, amount: Decimal | str, currency: str) -> int:
    """Convert a decimal amount in major units (`"25.99"` EUR) to integer minor units (2599), exactly.

    The number of decimals allowed comes from ISO 4217 (`currency_exponent`): `"10.001"` EUR, `"5.5"` JPY or
    `"1.0005"` BHD do not fit and raise InvalidAmount, as do floats, non-numbers and amounts outside
    0 … MAX_AMOUNT minor units. Nothing is rounded.
    """
    if not isinstance(amount, Decimal | str):
        raise InvalidAmount(f"amount must be a Decimal or a decimal string, got {type(amount).__name__}")
    exponent = currency_exponent(currency)
    try:
        value = Decimal(amount)
    except InvalidOperation as exc:
        raise InvalidAmount(f"{amount!r} is not a decimal amount") from exc
    if not value.is_finite():
        raise InvalidAmount(f"{amount!r} is not a finite amount")
    scaled = value.scaleb(exponent)
    if scaled != scaled.to_integral_value():
        raise InvalidAmount(f"{amount} {currency} has more than {exponent} decimals (ISO 4217)")
    units = int(scaled)
    if not 0 <= units <= MAX_AMOUNT:
        raise InvalidAmount(f"{amount} {currency} is outside 0 … {MAX_AMOUNT} minor units")
    return units


def default_balance_shards(purpose: AccountPurpose | str) -> int:
    """How many balance rows an account of `purpose` gets: 1 for a merchant's, LEDGER_BALANCE_SHARDS otherwise."""
    if AccountPurpose(purpose) in MERCHANT_PURPOSES:
        return 1
    return int(getattr(settings, "LEDGER_BALANCE_SHARDS", 16))


def account_get_or_create(*, ref: AccountRef, balance_shards: int | None = None) -> AccountRecord:
    """Return the standard account named by `ref`, opening it (with its balance rows) on first use.

    Safe under concurrency (a unique constraint decides the race). `balance_shards` overrides the default
    (`default_balance_shards`) for a new account only; an existing account keeps its own.
    Raises InvalidAmount for an invalid currency, ValueError for an unknown purpose or a shard count below 1.
    """
    return account_record(_account_get_or_create(ref=ref, balance_shards=balance_shards))


def _account_get_or_create(*, ref: AccountRef, balance_shards: int | None = None) -> Account:
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


def _accounts(refs: Iterable[AccountRef]) -> dict[tuple[str, str, str], Account]:
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
            fetched[key] = _account_get_or_create(ref=ref)
    transaction.on_commit(lambda: _remember(fetched))
    return found | fetched


def _key(ref: AccountRef) -> tuple[str, str, str]:
    return (ref.owner, str(AccountPurpose(ref.purpose)), ref.currency)


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
    guarded = {accounts[_key(r)].pk for r in no_overdraft}
    rows: set[tuple[int, int]] = set()
    for ref, *_ in entries:
        account = accounts[_key(ref)]
        if account.pk not in guarded:
            rows.add((account.pk, txn.pk % account.balance_shards))
    query = Q(account_id__in=guarded)
    for account_id, shard in rows:
        query |= Q(account_id=account_id, shard=shard)
    locked = list(AccountBalance.objects.select_for_update().filter(query).order_by("account_id", "shard"))
    for ref in no_overdraft:
        account = accounts[_key(ref)]
        available_before = _available(account, [b for b in locked if b.account_id == account.pk])
        delta = AccountBalance(account=account, shard=0)
        for entry_ref, side, pending, amount in entries:
            if _key(entry_ref) == _key(ref):
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
            accounts = _accounts([ref for ref, *_ in entries] + list(no_overdraft))
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
                        account=accounts[_key(ref)],
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


# --- Hash chain ---------------------------------------------------------------------------------------------------


def _chain_head() -> tuple[int, str]:
    head = LedgerSeal.objects.order_by("-seq").values_list("seq", "hash").first()
    return head if head is not None else (0, chain.GENESIS)


def _unsealed_ids(*, limit: int, full: bool, max_sealed_id: int) -> list[int]:
    lookback = float(getattr(settings, "LEDGER_SEAL_LOOKBACK", 3600.0))
    sql = """
        SELECT t.id FROM ledger_transaction t
        WHERE NOT EXISTS (SELECT 1 FROM ledger_seal s WHERE s.transaction_id = t.id)
    """
    params: list[object] = []
    if not full:
        sql += " AND (t.id > %s OR t.created_at >= now() - make_interval(secs => %s))"
        params += [max_sealed_id, lookback]
    sql += " ORDER BY t.id LIMIT %s"
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, limit])
        return [row[0] for row in cursor.fetchall()]


def chain_seal(*, batch_size: int = 2000, full: bool = False, max_batches: int | None = None) -> SealReport:
    """Append every committed, unsealed ledger transaction to the hash chain, in id order; returns what it did.

    Runs from Celery beat every LEDGER_SEAL_INTERVAL seconds (ledger.tasks.seal), never in the posting path:
    postings take no chain lock. Sealers serialise on a PostgreSQL advisory lock; each batch of `batch_size` is
    its own transaction. A ledger transaction that commits after a higher id was sealed is chained in a later
    run (the chain's order is sealing order). Without `full`, only ids above the highest sealed id or created in
    the last LEDGER_SEAL_LOOKBACK seconds are considered (an index range, not a scan of the ledger); `full=True`
    scans everything (`manage.py ledger_seal --full`).
    """
    sealed = 0
    batches = 0
    while max_batches is None or batches < max_batches:
        batches += 1
        with transaction.atomic(durable=True):
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SEAL_LOCK_ID])
            seq, prev = _chain_head()
            max_sealed_id = LedgerSeal.objects.order_by("-transaction_id").values_list("transaction_id", flat=True)
            ids = _unsealed_ids(limit=batch_size, full=full, max_sealed_id=max_sealed_id.first() or 0)
            contents = chain.content_hashes(ids)
            links = []
            for txn_id in ids:
                seq += 1
                link = chain.link_hash(prev_hash=prev, seq=seq, transaction_id=txn_id, content_hash=contents[txn_id])
                links.append(
                    LedgerSeal(seq=seq, transaction_id=txn_id, content_hash=contents[txn_id], prev_hash=prev, hash=link)
                )
                prev = link
            LedgerSeal.objects.bulk_create(links)
        sealed += len(ids)
        if len(ids) < batch_size:
            break
    head_seq, head_hash = _chain_head()
    return SealReport(sealed=sealed, head_seq=head_seq, head_hash=head_hash)


# --- Verification ------------------------------------------------------------------------------------------------


def verification_run(
    *, source: str, seal_first: bool = False, progress: Callable[[int, int], None] | None = None
) -> VerificationOutcome:
    """Check every ledger invariant (ledger.verify.run_checks) and record the outcome (VerificationRun).

    `source` says who ran it (`command`, `task`). `seal_first` chains unsealed ledger transactions before
    checking (the nightly task does). `progress(done, total)` is called while the hash chain is re-hashed.
    The recorded run feeds the `clearhouse_ledger_verify_*` metrics. Never raises for a broken invariant: the
    outcome says so (`summary.ok`, `summary.failures`).
    """
    if seal_first:
        chain_seal()
    started = timezone.now()
    results = verify.run_checks(progress=progress)
    finished = timezone.now()
    failures = sum(len(r.failures) for r in results)
    head_seq, head_hash = _chain_head()
    run = VerificationRun.objects.create(
        source=source,
        started_at=started,
        finished_at=finished,
        ok=failures == 0,
        failures=failures,
        report=[{"name": r.name, "examined": r.examined, "ok": r.ok, "failures": r.failures[:100]} for r in results],
        head_seq=head_seq,
        head_hash=head_hash if head_seq else "",
    )
    summary = VerificationSummary(
        id=run.pk,
        source=source,
        ok=run.ok,
        failures=failures,
        started_at=started,
        finished_at=finished,
        head_seq=head_seq,
        head_hash=run.head_hash,
    )
    reports = tuple(
        CheckReport(name=r.name, description=r.description, examined=r.examined, failures=tuple(r.failures))
        for r in results
    )
    return VerificationOutcome(summary=summary, results=reports)
