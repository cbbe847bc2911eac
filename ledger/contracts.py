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
