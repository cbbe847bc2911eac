"""A plain-Python model of the ledger, and the posting rules of docs/ledger.md driven through ledger.services.

Used by the property-based tests (hypothesis) and the suite-traffic test. Refund, settlement and fee postings are
not in payments.postings yet; `Books` posts them through `transaction_post` exactly as the table in
docs/ledger.md says, so the ledger's mechanics are proven for every code the platform will use.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction

from ledger import money, services
from ledger.contracts import ACCOUNT_TYPES, AccountPurpose, AccountRef, Balance, Leg, Side

#: The currencies used, one per ISO 4217 exponent: 0 (JPY), 2 (EUR), 3 (BHD).
CURRENCIES = {"JPY": 0, "EUR": 2, "BHD": 3}

#: One entry as the model sees it: (account, side, pending phase?, signed amount in minor units).
EntrySpec = tuple[AccountRef, Side, bool, int]


@dataclass
class Model:
    """Per account: posted debits, posted credits, pending debits, pending credits (minor units)."""

    sums: dict[AccountRef, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0, 0]))

    def apply(self, entries: list[EntrySpec]) -> None:
        """Add one ledger transaction's entries."""
        for ref, side, pending, amount in entries:
            self.sums[ref][(2 if pending else 0) + (0 if side == Side.DEBIT else 1)] += amount

    def balance(self, ref: AccountRef) -> Balance:
        """The three balances of `ref` on its normal side, as docs/ledger.md defines them."""
        pd, pc, hd, hc = self.sums[ref]
        if ACCOUNT_TYPES[AccountPurpose(ref.purpose)].debit_normal:
            posted, pending, outgoing = pd - pc, hd - hc, hc
        else:
            posted, pending, outgoing = pc - pd, hc - hd, hd
        return Balance(currency=ref.currency, posted=posted, pending=pending, available=posted - outgoing)


def through_minor_units(amount: int, currency: str) -> int:
    """`amount` minor units written as a decimal in major units, converted back with ledger.money.minor_units
    (so every posted amount goes through the ISO 4217 exponent of its currency)."""
    major = Decimal(amount).scaleb(-CURRENCIES[currency])
    return money.minor_units(amount=str(major), currency=currency)


@dataclass(frozen=True)
class Books:
    """The accounts of one test run (`run` keeps runs apart in one database) and the posting rules."""

    run: str

    def merchant(self, m: int, purpose: AccountPurpose, currency: str) -> AccountRef:
        """Merchant `m`'s account."""
        return AccountRef(owner=f"{self.run}:merchant:{m}", purpose=purpose, currency=currency)

    def platform(self, purpose: AccountPurpose, currency: str) -> AccountRef:
        """The platform's account."""
        return AccountRef(owner=f"{self.run}:platform", purpose=purpose, currency=currency)

    def refs(self, merchants: int) -> list[AccountRef]:
        """Every standard account of the run, for comparing the model with the database."""
        refs = []
        for currency in CURRENCIES:
            for purpose in AccountPurpose:
                if purpose.value in ("pending", "available", "reserve"):
                    refs += [self.merchant(m, purpose, currency) for m in range(merchants)]
                else:
                    refs.append(self.platform(purpose, currency))
        return refs

    # --- the posting rules of docs/ledger.md, each in its own database transaction like a real caller --------

    def authorize(self, p: str, m: int, currency: str, amount: int) -> list[EntrySpec]:
        """`authorization_hold`: pending Dr processor_receivable / Cr merchant pending."""
        receivable = self.platform(AccountPurpose.PROCESSOR_RECEIVABLE, currency)
        merchant = self.merchant(m, AccountPurpose.MERCHANT_PENDING, currency)
        with transaction.atomic(durable=True):
            services.pending_create(
                code="authorization_hold",
                reference=f"payment:{self.run}:{p}",
                idempotency_key=f"{self.run}:{p}:authorization_hold",
                debit=receivable,
                credit=merchant,
                amount=through_minor_units(amount, currency),
            )
        return [(receivable, Side.DEBIT, True, amount), (merchant, Side.CREDIT, True, amount)]

    def capture(self, p: str, m: int, currency: str, held: int, amount: int) -> list[EntrySpec]:
        """`capture`: post `amount` of the pending transaction, release the rest."""
        with transaction.atomic(durable=True):
            services.pending_post(
                pending_key=f"{self.run}:{p}:authorization_hold",
                amount=amount,
                code="capture",
                reference=f"payment:{self.run}:{p}",
                idempotency_key=f"{self.run}:{p}:capture",
            )
        return self._release(m, currency, held) + (self._move(m, currency, amount) if amount else [])

    def void(self, p: str, m: int, currency: str, held: int) -> list[EntrySpec]:
        """`void_release`: release the whole pending transaction."""
        with transaction.atomic(durable=True):
            services.pending_void(
                pending_key=f"{self.run}:{p}:authorization_hold",
                code="void_release",
                reference=f"payment:{self.run}:{p}",
                idempotency_key=f"{self.run}:{p}:void_release",
            )
        return self._release(m, currency, held)

    def _release(self, m: int, currency: str, held: int) -> list[EntrySpec]:
        receivable = self.platform(AccountPurpose.PROCESSOR_RECEIVABLE, currency)
        merchant = self.merchant(m, AccountPurpose.MERCHANT_PENDING, currency)
        return [(receivable, Side.DEBIT, True, -held), (merchant, Side.CREDIT, True, -held)]

    def _move(self, m: int, currency: str, amount: int) -> list[EntrySpec]:
        receivable = self.platform(AccountPurpose.PROCESSOR_RECEIVABLE, currency)
        merchant = self.merchant(m, AccountPurpose.MERCHANT_PENDING, currency)
        return [(receivable, Side.DEBIT, False, amount), (merchant, Side.CREDIT, False, amount)]

    def _post(self, code: str, key: str, legs: list[Leg], *, guard: AccountRef | None) -> list[EntrySpec]:
        with transaction.atomic(durable=True):
            services.transaction_post(
                code=code,
                reference=key,
                idempotency_key=f"{self.run}:{key}",
                legs=legs,
                no_overdraft=[guard] if guard is not None else (),
            )
        return [(leg.account, leg.side, False, leg.amount) for leg in legs]

    def settle(self, p: str, m: int, currency: str, amount: int) -> list[EntrySpec]:
        """`settlement`: the captured amount becomes available, Dr merchant pending / Cr merchant available."""
        legs = [
            Leg(account=self.merchant(m, AccountPurpose.MERCHANT_PENDING, currency), side=Side.DEBIT, amount=amount),
            Leg(account=self.merchant(m, AccountPurpose.MERCHANT_AVAILABLE, currency), side=Side.CREDIT, amount=amount),
        ]
        return self._post("settlement", f"{p}:settlement", legs, guard=None)

    def refund(self, key: str, m: int, currency: str, amount: int) -> list[EntrySpec]:
        """`refund`: Dr merchant available / Cr refunds_clearing, refused when available would go below zero."""
        available = self.merchant(m, AccountPurpose.MERCHANT_AVAILABLE, currency)
        legs = [
            Leg(account=available, side=Side.DEBIT, amount=amount),
            Leg(account=self.platform(AccountPurpose.REFUNDS_CLEARING, currency), side=Side.CREDIT, amount=amount),
        ]
        return self._post("refund", key, legs, guard=available)

    def fee(self, key: str, m: int, currency: str, amount: int, guarded: bool) -> list[EntrySpec]:
        """`fee`: Dr merchant available / Cr platform fees (revenue); optionally refused on overdraft."""
        available = self.merchant(m, AccountPurpose.MERCHANT_AVAILABLE, currency)
        legs = [
            Leg(account=available, side=Side.DEBIT, amount=amount),
            Leg(account=self.platform(AccountPurpose.FEES, currency), side=Side.CREDIT, amount=amount),
        ]
        return self._post("fee", key, legs, guard=available if guarded else None)
