"""Ledger write services: open accounts, post ledger transactions, create and resolve holds.

Callers pass `AccountRef`/`Leg` values (ledger.contracts), never ledger models. Every service runs inside the
caller's database transaction when there is one (so a payment's state change and its ledger transaction commit
together) and is idempotent on `idempotency_key`: posting the same key again returns the existing ledger
transaction and writes nothing.

Balances are sums over entries (ledger.selectors); no balance row is locked or updated, so parallel postings
never wait on a shared platform account (docs/ledger.md).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from django.db import IntegrityError, transaction
from iso4217 import Currency

from ledger.contracts import ACCOUNT_TYPES, AccountRef, Leg, Side
from ledger.errors import (
    HoldAlreadyResolved,
    HoldAmountExceeded,
    InvalidAmount,
    NotAHold,
    UnbalancedTransaction,
)
from ledger.models import Account, Entry, LedgerTransaction


def currency_exponent(currency: str) -> int:
    """The ISO 4217 minor-unit exponent of `currency` (2 for EUR, 0 for JPY, 3 for BHD).

    Raises InvalidAmount for a code that is not an ISO 4217 currency with minor units (e.g. `XAU`, `ZZZ`).
    """
    try:
        exponent = Currency(currency).exponent
    except ValueError as exc:
        raise InvalidAmount(f"{currency!r} is not an ISO 4217 currency code") from exc
    if exponent is None:
        raise InvalidAmount(f"{currency!r} has no minor units and cannot be used for payments")
    return int(exponent)


def account_get_or_create(*, ref: AccountRef) -> Account:
    """Return the standard account named by `ref`, opening it on first use. Safe under concurrency.

    Raises InvalidAmount for an invalid currency.
    """
    currency_exponent(ref.currency)
    account = Account.objects.filter(owner=ref.owner, purpose=ref.purpose, currency=ref.currency).first()
    if account is not None:
        return account
    try:
        with transaction.atomic():
            return Account.objects.create(
                owner=ref.owner, purpose=ref.purpose, currency=ref.currency, type=ACCOUNT_TYPES[ref.purpose]
            )
    except IntegrityError:
        return Account.objects.get(owner=ref.owner, purpose=ref.purpose, currency=ref.currency)


def _check_legs(legs: Sequence[Leg]) -> None:
    if len(legs) < 2:
        raise UnbalancedTransaction("a ledger transaction needs at least two legs")
    totals: dict[str, int] = defaultdict(int)
    for leg in legs:
        if not isinstance(leg.amount, int) or isinstance(leg.amount, bool) or leg.amount <= 0:
            raise InvalidAmount(f"leg amount must be a positive integer of minor units, got {leg.amount!r}")
        currency_exponent(leg.account.currency)
        totals[leg.account.currency] += leg.amount if leg.side == Side.DEBIT else -leg.amount
    unbalanced = {c: t for c, t in totals.items() if t != 0}
    if unbalanced:
        raise UnbalancedTransaction(f"debits and credits differ per currency: {unbalanced}")


def _existing(idempotency_key: str) -> LedgerTransaction | None:
    return LedgerTransaction.objects.filter(idempotency_key=idempotency_key).first()


def _write(
    *,
    code: str,
    kind: str,
    reference: str,
    idempotency_key: str,
    entries: Sequence[tuple[AccountRef, Side, bool, int]],
    pending_of: LedgerTransaction | None = None,
    description: str = "",
) -> LedgerTransaction:
    with transaction.atomic():
        txn = LedgerTransaction.objects.create(
            code=code,
            kind=kind,
            reference=reference,
            idempotency_key=idempotency_key,
            pending_of=pending_of,
            description=description,
        )
        Entry.objects.bulk_create(
            [
                Entry(
                    transaction=txn,
                    account=account_get_or_create(ref=ref),
                    side=side,
                    pending=pending,
                    amount=amount,
                    currency=ref.currency,
                )
                for ref, side, pending, amount in entries
            ]
        )
    return txn


def transaction_post(
    *, code: str, reference: str, idempotency_key: str, legs: Sequence[Leg], description: str = ""
) -> LedgerTransaction:
    """Post a plain (non-pending) ledger transaction with the given legs.

    `legs` must hold two or more positive amounts whose debits equal credits per currency.
    Raises UnbalancedTransaction or InvalidAmount; nothing is written then.
    """
    _check_legs(legs)
    if (existing := _existing(idempotency_key)) is not None:
        return existing
    return _write(
        code=code,
        kind=LedgerTransaction.Kind.POSTED,
        reference=reference,
        idempotency_key=idempotency_key,
        entries=[(leg.account, leg.side, False, leg.amount) for leg in legs],
        description=description,
    )


def hold_create(
    *,
    code: str,
    reference: str,
    idempotency_key: str,
    debit: AccountRef,
    credit: AccountRef,
    amount: int,
    description: str = "",
) -> LedgerTransaction:
    """Create a hold: a pending ledger transaction of `amount` minor units from `credit` to `debit`.

    It moves nothing posted; it shows in the pending balances of both accounts until `hold_post` or `hold_void`
    resolves it (TigerBeetle's two-phase transfer). Raises InvalidAmount or UnbalancedTransaction.
    """
    legs = [Leg(account=debit, side=Side.DEBIT, amount=amount), Leg(account=credit, side=Side.CREDIT, amount=amount)]
    _check_legs(legs)
    if (existing := _existing(idempotency_key)) is not None:
        return existing
    return _write(
        code=code,
        kind=LedgerTransaction.Kind.PENDING,
        reference=reference,
        idempotency_key=idempotency_key,
        entries=[(leg.account, leg.side, True, leg.amount) for leg in legs],
        description=description,
    )


def _hold_entries(hold: LedgerTransaction) -> list[Entry]:
    if hold.kind != LedgerTransaction.Kind.PENDING:
        raise NotAHold(f"ledger transaction {hold.pk} is not a hold")
    return list(hold.entries.select_related("account"))


def _ref(entry: Entry) -> AccountRef:
    return AccountRef(owner=entry.account.owner, purpose=entry.account.purpose, currency=entry.currency)


def _resolve(
    *, hold: LedgerTransaction, kind: str, code: str, reference: str, idempotency_key: str, amount: int
) -> LedgerTransaction:
    if (existing := _existing(idempotency_key)) is not None:
        return existing
    hold_entries = _hold_entries(hold)
    held = hold_entries[0].amount
    if amount < 0 or amount > held:
        raise HoldAmountExceeded(f"cannot post {amount} of a hold of {held}")
    entries: list[tuple[AccountRef, Side, bool, int]] = [(_ref(e), Side(e.side), True, -e.amount) for e in hold_entries]
    if amount:
        entries += [(_ref(e), Side(e.side), False, amount) for e in hold_entries]
    try:
        return _write(
            code=code,
            kind=kind,
            reference=reference,
            idempotency_key=idempotency_key,
            entries=entries,
            pending_of=hold,
        )
    except IntegrityError as exc:
        if LedgerTransaction.objects.filter(pending_of=hold).exists():
            raise HoldAlreadyResolved(f"hold {hold.pk} is already resolved") from exc
        raise


def hold_post(
    *, hold: LedgerTransaction, amount: int, code: str, reference: str, idempotency_key: str
) -> LedgerTransaction:
    """Post `amount` minor units (≤ the held amount) of `hold` and release the rest, in one ledger transaction.

    Raises HoldAlreadyResolved when the hold was already posted or voided (enforced by a unique constraint),
    HoldAmountExceeded when `amount` is negative or above the held amount, NotAHold for a non-pending one.
    """
    if LedgerTransaction.objects.filter(pending_of=hold).exclude(idempotency_key=idempotency_key).exists():
        raise HoldAlreadyResolved(f"hold {hold.pk} is already resolved")
    return _resolve(
        hold=hold,
        kind=LedgerTransaction.Kind.POST_PENDING,
        code=code,
        reference=reference,
        idempotency_key=idempotency_key,
        amount=amount,
    )


def hold_void(*, hold: LedgerTransaction, code: str, reference: str, idempotency_key: str) -> LedgerTransaction:
    """Release `hold` entirely (void or expiry); nothing is posted.

    Raises HoldAlreadyResolved when the hold was already posted or voided, NotAHold for a non-pending one.
    """
    if LedgerTransaction.objects.filter(pending_of=hold).exclude(idempotency_key=idempotency_key).exists():
        raise HoldAlreadyResolved(f"hold {hold.pk} is already resolved")
    return _resolve(
        hold=hold,
        kind=LedgerTransaction.Kind.VOID_PENDING,
        code=code,
        reference=reference,
        idempotency_key=idempotency_key,
        amount=0,
    )
