"""Plain data types that cross the ledger's boundary (frozen, keyword-only dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass
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

    Per merchant and currency: `pending` (captured, not yet settled; holds show in its pending balance),
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

    `posted`: settled movements. `pending`: open holds. `available`: `posted` minus outgoing holds
    (holds that would reduce the balance), the amount that can be spent.
    """

    currency: str
    posted: int
    pending: int
    available: int
