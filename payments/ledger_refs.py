"""The strings by which payments names things in the ledger: one home for the owner of each ledger account and the
reference of each ledger transaction (docs/ledger.md, "Accounts" and "References").

- A merchant's accounts are owned by `<mode>:merchant:<merchant id>` (`test:merchant:mer_…`), the platform's by
  `<mode>:platform`, so test and live money never share an account.
- Every ledger transaction of a payment, its refunds included, has the reference `payment:<payment id>`.

Part of the payments app's public face: reconciliation books settlements against the same accounts.
"""

from __future__ import annotations


def merchant_owner(*, merchant_id: str, mode: str) -> str:
    """The ledger owner string of a merchant's accounts in `mode` (`test`/`live`): `test:merchant:mer_…`."""
    return f"{mode}:merchant:{merchant_id}"


def platform_owner(*, mode: str) -> str:
    """The ledger owner string of the platform's accounts in `mode`: `test:platform`."""
    return f"{mode}:platform"


def payment_reference(payment_id: str) -> str:
    """The reference of every ledger transaction of the payment `payment_id`: `payment:pay_…`."""
    return f"payment:{payment_id}"
