"""Plain data types that cross the ledger's boundary (frozen, keyword-only dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class AccountType(StrEnum):
    """The accounting type of an account; it fixes the account's normal side.

    Assets and expenses are debit-normal, liabilities and revenue credit-normal.
    """

    ASSET = "asset"
    LIABILITY = "liability"
    REVENUE = "revenue"
    EXPENSE = "expense"

    @property
    def debit_normal(self) -> bool:
        """True for asset and expense accounts, whose balance grows with debits."""
        return self in (AccountType.ASSET, AccountType.EXPENSE)


class AccountPurpose(StrEnum):
    """The standard accounts (docs/ledger.md has the chart of accounts).

    Per merchant and currency: `pending` (captured, not yet settled; authorizations' pending ledger transactions
    show in its pending balance),
    `available` (settled, payable), `reserve` (withheld). Per platform and currency: `processor_receivable`,
    `fees` (revenue), `processor_fees` (expense), `refunds_clearing`, `payouts_clearing`.
    """

    MERCHANT_PENDING = "pending"
    MERCHANT_AVAILABLE = "available"
    MERCHANT_RESERVE = "reserve"
    PROCESSOR_RECEIVABLE = "processor_receivable"
    FEES = "fees"
    PROCESSOR_FEES = "processor_fees"
    REFUNDS_CLEARING = "refunds_clearing"
    PAYOUTS_CLEARING = "payouts_clearing"


ACCOUNT_TYPES: dict[AccountPurpose, AccountType] = {
    AccountPurpose.MERCHANT_PENDING: AccountType.LIABILITY,
    AccountPurpose.MERCHANT_AVAILABLE: AccountType.LIABILITY,
    AccountPurpose.MERCHANT_RESERVE: AccountType.LIABILITY,
    AccountPurpose.PROCESSOR_RECEIVABLE: AccountType.ASSET,
    AccountPurpose.FEES: AccountType.REVENUE,
    AccountPurpose.PROCESSOR_FEES: AccountType.EXPENSE,
    AccountPurpose.REFUNDS_CLEARING: AccountType.LIABILITY,
    AccountPurpose.PAYOUTS_CLEARING: AccountType.LIABILITY,
}

PLATFORM_OWNER = "platform"

#: Purposes of a merchant's own accounts. Their balance is one row (one shard), so a balance check on them can
#: lock it and stay exact (refunds, payouts). Every other (platform) purpose is sharded: see docs/ledger.md.
MERCHANT_PURPOSES: frozenset[AccountPurpose] = frozenset(
    {AccountPurpose.MERCHANT_PENDING, AccountPurpose.MERCHANT_AVAILABLE, AccountPurpose.MERCHANT_RESERVE}
)


@dataclass(frozen=True, kw_only=True)
class AccountRef:
    """Names a standard account: its owner (`platform` or an opaque caller string), purpose and currency."""

    owner: str
    purpose: AccountPurpose
    currency: str


class Side(StrEnum):
    """The side of an entry: debit or credit."""

    DEBIT = "debit"
    CREDIT = "credit"


@dataclass(frozen=True, kw_only=True)
class Leg:
    """One entry to post: a positive `amount` in minor units on one `side` of `account`."""

    account: AccountRef
    side: Side
    amount: int


class TransactionKind(StrEnum):
    """What a ledger transaction is: `posted` (plain), `pending` (the first phase of a two-phase transfer), or the
    resolution of a pending one: `post_pending` (posts some or all of it and releases the rest) or `void_pending`
    (releases all of it)."""

    POSTED = "posted"
    PENDING = "pending"
    POST_PENDING = "post_pending"
    VOID_PENDING = "void_pending"


@dataclass(frozen=True, kw_only=True)
class AccountRecord:
    """An open ledger account: its id, what names it (owner, purpose, currency), its type and how many balance
    rows it has (1 for a merchant's, LEDGER_BALANCE_SHARDS for the platform's)."""

    id: int
    owner: str
    purpose: AccountPurpose
    type: AccountType
    currency: str
    balance_shards: int

    @property
    def ref(self) -> AccountRef:
        """The AccountRef that names this account."""
        return AccountRef(owner=self.owner, purpose=self.purpose, currency=self.currency)


@dataclass(frozen=True, kw_only=True)
class EntryRecord:
    """One stored entry of a ledger transaction: `amount` minor units on `side` of `account`, in the pending or the
    posted phase. `amount` is negative only on the pending entries that release a pending transaction."""

    account: AccountRef
    side: Side
    pending: bool
    amount: int
    currency: str


@dataclass(frozen=True, kw_only=True)
class TransactionRecord:
    """A stored ledger transaction, as the ledger's services and selectors return it (never a model).

    `pending_of_id`: the pending transaction a `post_pending`/`void_pending` one resolves; `reverses_id`: the
    ledger transaction a reversal corrects. `entries` in the order they were written (by account). `created_at`
    is an aware datetime (UTC).
    """

    id: int
    code: str
    kind: TransactionKind
    reference: str
    idempotency_key: str
    description: str
    created_at: datetime
    pending_of_id: int | None
    reverses_id: int | None
    entries: tuple[EntryRecord, ...]


@dataclass(frozen=True, kw_only=True)
class TransactionPage:
    """One page of ledger transaction ids, newest first, and whether more lie beyond it in the direction paged."""

    ids: tuple[int, ...]
    has_more: bool


@dataclass(frozen=True, kw_only=True)
class Balance:
    """An account's balances in minor units, on the account's normal side (positive = normal).

    `posted`: settled movements. `pending`: open pending ledger transactions (two-phase, not yet posted or voided).
    `available`: `posted` minus outgoing pending amounts (those that would reduce the balance), the amount that can
    be spent.
    """

    currency: str
    posted: int
    pending: int
    available: int


@dataclass(frozen=True, kw_only=True)
class MovementLine:
    """How one ledger transaction changed one account of an owner, in minor units on the account's normal side.

    `purpose` names the account; `posted` and `pending` are the changes of its posted and pending balances.
    """

    purpose: str
    currency: str
    posted: int
    pending: int


@dataclass(frozen=True, kw_only=True)
class Movement:
    """One ledger transaction as seen by one owner (a merchant's balance transaction), in one currency.

    `net`: the change of the owner's posted balances (credit-normal accounts: credits − debits), minor units.
    `fee`: revenue the platform recognised in the same ledger transaction (credits − debits on `fees` accounts).
    `amount`: `net + fee`, the gross. `pending`: the change of the owner's pending (held) balances.
    """

    transaction_id: int
    code: str
    kind: str
    reference: str
    description: str
    created_at: datetime
    currency: str
    amount: int
    fee: int
    net: int
    pending: int
    lines: tuple[MovementLine, ...]


@dataclass(frozen=True, kw_only=True)
class ChainStatus:
    """The state of the ledger's hash chain (docs/ledger.md, "Hash chain").

    `sealed`: ledger transactions chained so far; `head_seq`/`head_hash`: the last link (0 and the genesis hash
    when empty); `unsealed`: committed ledger transactions not chained yet; `oldest_unsealed_age`: seconds since
    the oldest of them was created (0.0 when none).
    """

    sealed: int
    head_seq: int
    head_hash: str
    unsealed: int
    oldest_unsealed_age: float


@dataclass(frozen=True, kw_only=True)
class SealReport:
    """What one sealing run did: ledger transactions chained, and the chain head afterwards."""

    sealed: int
    head_seq: int
    head_hash: str


@dataclass(frozen=True, kw_only=True)
class VerificationSummary:
    """The outcome of one `ledger_verify` run as recorded in the ledger (for metrics and the runbook).

    `failures`: broken invariants found (0 when `ok`). Times are aware datetimes (UTC).
    """

    id: int
    source: str
    ok: bool
    failures: int
    started_at: datetime
    finished_at: datetime
    head_seq: int
    head_hash: str


@dataclass(frozen=True, kw_only=True)
class CheckReport:
    """The outcome of one ledger invariant check: its name and description, rows examined, and the failures (each
    naming the offending ledger transaction or account; empty when the invariant holds)."""

    name: str
    description: str
    examined: int
    failures: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """True when no row broke the invariant."""
        return not self.failures


@dataclass(frozen=True, kw_only=True)
class VerificationOutcome:
    """A verification run: the recorded summary and each check's result, in the order they ran."""

    summary: VerificationSummary
    results: tuple[CheckReport, ...]
