"""Property-based proof (hypothesis): random sequences of authorize, partial capture, void, settle, refund and
fee over random amounts, merchants and currencies (ISO 4217 exponents 0, 2 and 3), posted through
ledger.services, checked against a plain-Python model (tests/ledger/ledger_model.py) and every `ledger_verify` check.

- Sequentially, the model predicts every outcome, including each refusal (pending transaction already resolved,
  capture above the pending amount, idempotency key reused with other content, refund beyond the available
  balance), and the balances.
- Concurrently, on real threads with their own PostgreSQL connections, captures race voids of the same pending
  transaction and refunds and fees race for the same merchant's available balance: exactly one resolution of each
  pending transaction wins, no available balance goes below zero, and the balances equal the model of the postings
  that succeeded.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import sealing, selectors
from ledger.contracts import AccountPurpose
from ledger.errors import HoldAlreadyResolved, HoldAmountExceeded, IdempotencyConflict, InsufficientFunds
from ledger.verify import run_checks
from tests.conftest import close_connection_after
from tests.ledger.ledger_model import CURRENCIES, Books, EntrySpec, Model

pytestmark = pytest.mark.django_db(transaction=True)

MERCHANTS = 3
PAYMENTS = 5
amounts = st.one_of(st.integers(1, 5_000), st.integers(1, 10**9))
currencies = st.sampled_from(sorted(CURRENCIES))
merchants = st.integers(0, MERCHANTS - 1)
payment_ids = st.integers(0, PAYMENTS - 1)

operation = st.one_of(
    st.tuples(st.just("authorize"), payment_ids, merchants, currencies, amounts),
    st.tuples(st.just("capture"), payment_ids, st.integers(0, 130)),
    st.tuples(st.just("void"), payment_ids),
    st.tuples(st.just("settle"), payment_ids),
    st.tuples(st.just("refund"), merchants, currencies, amounts),
    st.tuples(st.just("fee"), merchants, currencies, amounts),
)


def assert_ledger_matches(books: Books, model: Model) -> None:
    """Every account of the run has the model's balances, and every ledger_verify check passes (after sealing)."""
    for ref in books.refs(MERCHANTS):
        assert selectors.balance_get(ref=ref) == model.balance(ref), ref
    sealing.chain_seal()
    broken = [f"{r.name}: {f}" for r in run_checks() for f in r.failures]
    assert broken == []


@dataclass
class PaymentState:
    merchant: int
    currency: str
    held: int
    resolved: str | None = None
    captured: int | None = None
    settled: bool = False


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(operation, min_size=1, max_size=30))
def test_sequences_of_postings_match_the_model_and_every_refusal_is_predicted(ops: list[tuple[Any, ...]]) -> None:
    books = Books(run=f"seq{uuid.uuid4().hex[:12]}")
    model = Model()
    payments: dict[int, PaymentState] = {}

    def expect(
        error: type[Exception] | None, call: Callable[..., list[EntrySpec]], *args: Any, replay: bool = False
    ) -> None:
        if error is not None:
            with pytest.raises(error):
                call(*args)
            return
        entries = call(*args)
        if not replay:
            model.apply(entries)

    for i, op in enumerate(ops):
        name, args = op[0], op[1:]
        if name == "authorize":
            p, m, cur, amount = args
            state = payments.get(p)
            if state is None:
                expect(None, books.authorize, f"p{p}", m, cur, amount)
                payments[p] = PaymentState(merchant=m, currency=cur, held=amount)
            else:
                same = (state.merchant, state.currency, state.held) == (m, cur, amount)
                expect(
                    None if same else IdempotencyConflict,
                    books.authorize,
                    f"p{p}",
                    m,
                    cur,
                    amount,
                    replay=True,
                )
        elif name in ("capture", "void"):
            p = args[0]
            state = payments.get(p)
            if state is None:
                continue
            if name == "capture":
                amount = state.held * args[1] // 100
                if amount > state.held:
                    error: type[Exception] | None = HoldAmountExceeded
                elif state.resolved == "capture":
                    error = None if amount == state.captured else IdempotencyConflict
                elif state.resolved == "void":
                    error = HoldAlreadyResolved
                else:
                    error = None
                replay = state.resolved == "capture"
                expect(
                    error,
                    books.capture,
                    f"p{p}",
                    state.merchant,
                    state.currency,
                    state.held,
                    amount,
                    replay=replay,
                )
                if error is None and not replay:
                    state.resolved, state.captured = "capture", amount
            else:
                error = HoldAlreadyResolved if state.resolved == "capture" else None
                replay = state.resolved == "void"
                expect(error, books.void, f"p{p}", state.merchant, state.currency, state.held, replay=replay)
                if error is None:
                    state.resolved = "void"
        elif name == "settle":
            state = payments.get(args[0])
            if state is None or not state.captured:
                continue
            expect(
                None,
                books.settle,
                f"p{args[0]}",
                state.merchant,
                state.currency,
                state.captured,
                replay=state.settled,
            )
            state.settled = True
        else:
            m, cur, amount = args
            available = model.balance(books.merchant(m, AccountPurpose.MERCHANT_AVAILABLE, cur)).available
            if name == "refund":
                error = InsufficientFunds if available - amount < 0 else None
                expect(error, books.refund, f"refund:{i}", m, cur, amount)
            else:
                expect(None, books.fee, f"fee:{i}", m, cur, amount, False)

    assert_ledger_matches(books, model)


# --- Concurrent ---------------------------------------------------------------------------------------------------

THREADS = 4

payment_script = st.fixed_dictionaries(
    {
        "merchant": merchants,
        "currency": currencies,
        "amount": amounts,
        "outcome": st.sampled_from(["capture", "void", "open", "race"]),
        "capture_pct": st.integers(0, 100),
        "settle": st.booleans(),
    }
)
charges = st.tuples(merchants, currencies, st.integers(1, 10**9))


@dataclass
class Run:
    """What the threads did: successful postings (for the model) and refusals, by operation."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    applied: list[list[EntrySpec]] = field(default_factory=list)
    outcomes: dict[str, str] = field(default_factory=dict)
    errors: list[BaseException] = field(default_factory=list)

    def attempt(self, name: str, call: Callable[[], list[EntrySpec]], *, refusals: tuple[type[Exception], ...]) -> None:
        try:
            entries = call()
        except refusals as exc:
            with self.lock:
                self.outcomes[name] = type(exc).__name__
            return
        with self.lock:
            self.applied.append(entries)
            self.outcomes[name] = "ok"


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    scripts=st.lists(payment_script, min_size=2, max_size=12),
    refunds=st.lists(charges, max_size=8),
    fees=st.lists(charges, max_size=4),
)
def test_concurrent_postings_resolve_each_pending_transaction_once_never_overdraw_and_match_the_model(
    scripts: list[dict[str, Any]], refunds: list[tuple[int, str, int]], fees: list[tuple[int, str, int]]
) -> None:
    books = Books(run=f"par{uuid.uuid4().hex[:12]}")
    run = Run()
    barrier = threading.Barrier(THREADS, timeout=120)

    def phase_authorize(t: int) -> None:
        for i, s in enumerate(scripts):
            if i % THREADS == t:
                run.attempt(
                    f"authorize:{i}",
                    lambda i=i, s=s: books.authorize(f"p{i}", s["merchant"], s["currency"], s["amount"]),
                    refusals=(),
                )

    def phase_resolve(t: int) -> None:
        for i, s in enumerate(scripts):
            m, cur, held = s["merchant"], s["currency"], s["amount"]
            amount = held * s["capture_pct"] // 100
            capture = lambda i=i, m=m, cur=cur, held=held, amount=amount: books.capture(f"p{i}", m, cur, held, amount)  # noqa: E731
            void = lambda i=i, m=m, cur=cur, held=held: books.void(f"p{i}", m, cur, held)  # noqa: E731
            if s["outcome"] == "capture" and i % THREADS == t:
                run.attempt(f"capture:{i}", capture, refusals=())
            elif s["outcome"] == "void" and i % THREADS == t:
                run.attempt(f"void:{i}", void, refusals=())
            elif s["outcome"] == "race":
                if i % THREADS == t:
                    run.attempt(f"capture:{i}", capture, refusals=(HoldAlreadyResolved,))
                if (i + 1) % THREADS == t:
                    run.attempt(f"void:{i}", void, refusals=(HoldAlreadyResolved,))

    def phase_money_out(t: int) -> None:
        for i, s in enumerate(scripts):
            amount = s["amount"] * s["capture_pct"] // 100
            if i % THREADS == t and s["settle"] and amount and run.outcomes.get(f"capture:{i}") == "ok":
                run.attempt(
                    f"settle:{i}",
                    lambda i=i, s=s, amount=amount: books.settle(f"p{i}", s["merchant"], s["currency"], amount),
                    refusals=(),
                )
        for j, (m, cur, amount) in enumerate(refunds):
            if j % THREADS == t:
                run.attempt(
                    f"refund:{j}",
                    lambda j=j, m=m, cur=cur, amount=amount: books.refund(f"refund:{j}", m, cur, amount),
                    refusals=(InsufficientFunds,),
                )
        for j, (m, cur, amount) in enumerate(fees):
            if j % THREADS == t:
                run.attempt(
                    f"fee:{j}",
                    lambda j=j, m=m, cur=cur, amount=amount: books.fee(f"fee:{j}", m, cur, amount, guarded=True),
                    refusals=(InsufficientFunds,),
                )

    @close_connection_after
    def worker(t: int) -> None:
        try:
            barrier.wait()
            phase_authorize(t)
            barrier.wait()
            phase_resolve(t)
            barrier.wait()
            phase_money_out(t)
        except BaseException as exc:
            run.errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert run.errors == [], run.errors

    for i, s in enumerate(scripts):
        if s["outcome"] == "race":
            results = sorted([run.outcomes[f"capture:{i}"], run.outcomes[f"void:{i}"]])
            assert results == ["HoldAlreadyResolved", "ok"], (i, results)
    model = Model()
    for entries in run.applied:
        model.apply(entries)
    for m in range(MERCHANTS):
        for cur in CURRENCIES:
            ref = books.merchant(m, AccountPurpose.MERCHANT_AVAILABLE, cur)
            assert selectors.balance_get(ref=ref).available >= 0, ref
    assert_ledger_matches(books, model)
