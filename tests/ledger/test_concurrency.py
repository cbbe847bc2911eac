"""Concurrency without hot rows, with real threads and their own PostgreSQL connections.

- A posting to the platform's processor receivable never waits for another open posting to it (its balance is
  sharded); with a single balance row it would (the control case, so the test can fail).
- Merchant-side checks stay exact: racing refunds never take an available balance below zero, and exactly as
  many succeed as the balance allows.
- Postings that touch the same accounts in any leg order never deadlock.
"""

from __future__ import annotations

import random
import threading

import pytest
from django.db import OperationalError, connection, transaction

from ledger import selectors, services
from ledger.contracts import AccountPurpose, AccountRef, Leg, Side
from ledger.errors import InsufficientFunds
from ledger.models import AccountBalance
from tests.conftest import close_connection_after

pytestmark = pytest.mark.django_db(transaction=True)

PLATFORM = "test:platform"


def receivable(owner: str = PLATFORM) -> AccountRef:
    return AccountRef(owner=owner, purpose=AccountPurpose.PROCESSOR_RECEIVABLE, currency="EUR")


def merchant(m: int, purpose: AccountPurpose = AccountPurpose.MERCHANT_PENDING) -> AccountRef:
    return AccountRef(owner=f"test:merchant:m{m}", purpose=purpose, currency="EUR")


def capture_like(key: str, debit: AccountRef, credit: AccountRef, amount: int = 100) -> None:
    services.transaction_post(
        code="capture",
        reference=key,
        idempotency_key=key,
        legs=[Leg(account=debit, side=Side.DEBIT, amount=amount), Leg(account=credit, side=Side.CREDIT, amount=amount)],
    )


def post_while_another_posting_is_open(platform: AccountRef) -> None:
    """Thread A posts to `platform` and keeps its transaction open; meanwhile this thread posts to `platform`
    for another merchant with lock_timeout set, so waiting for any row lock A holds raises at once."""
    for m in (1, 2):
        services.account_get_or_create(ref=merchant(m))
    opened, release = threading.Event(), threading.Event()

    @close_connection_after
    def a() -> None:
        with transaction.atomic():
            capture_like("a", platform, merchant(1))
            opened.set()
            release.wait(60)

    t = threading.Thread(target=a)
    t.start()
    try:
        assert opened.wait(60)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '200ms'")
            capture_like("b", platform, merchant(2))
    finally:
        release.set()
        t.join()


def test_a_posting_to_the_platform_account_does_not_wait_for_another_open_posting_to_it() -> None:
    services.account_get_or_create(ref=receivable())
    assert AccountBalance.objects.filter(account__owner=PLATFORM).count() == 16
    post_while_another_posting_is_open(receivable())
    assert selectors.balance_get(ref=receivable()).posted == 200
    shards = AccountBalance.objects.filter(account__owner=PLATFORM).exclude(posted_debits=0)
    assert shards.count() == 2  # the two postings landed on different balance rows


def test_with_a_single_balance_row_the_platform_account_is_a_hot_row() -> None:
    """The control case: the same two postings against a one-row balance wait for each other."""
    services.account_get_or_create(ref=receivable("test:hot-platform"), balance_shards=1)
    with pytest.raises(OperationalError, match="lock timeout"):
        post_while_another_posting_is_open(receivable("test:hot-platform"))


def test_racing_refunds_never_overdraw_and_exactly_the_affordable_ones_succeed() -> None:
    available = merchant(1, AccountPurpose.MERCHANT_AVAILABLE)
    clearing = AccountRef(owner=PLATFORM, purpose=AccountPurpose.REFUNDS_CLEARING, currency="EUR")
    with transaction.atomic():
        capture_like("settled", merchant(1), available, amount=1000)
    threads_count = 16
    barrier = threading.Barrier(threads_count, timeout=60)
    outcomes: list[str] = []
    lock = threading.Lock()

    @close_connection_after
    def refund(i: int) -> None:
        barrier.wait()
        try:
            with transaction.atomic():
                services.transaction_post(
                    code="refund",
                    reference=f"refund:{i}",
                    idempotency_key=f"refund:{i}",
                    legs=[
                        Leg(account=available, side=Side.DEBIT, amount=100),
                        Leg(account=clearing, side=Side.CREDIT, amount=100),
                    ],
                    no_overdraft=[available],
                )
            result = "ok"
        except InsufficientFunds:
            result = "refused"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=refund, args=(i,)) for i in range(threads_count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok"] * 10 + ["refused"] * 6
    assert selectors.balance_get(ref=available).available == 0
    assert selectors.balance_get(ref=clearing).posted == 1000


def test_an_outgoing_pending_transaction_counts_against_the_available_balance_of_a_checked_posting() -> None:
    available = merchant(1, AccountPurpose.MERCHANT_AVAILABLE)
    payouts = AccountRef(owner=PLATFORM, purpose=AccountPurpose.PAYOUTS_CLEARING, currency="EUR")
    with transaction.atomic():
        capture_like("settled", merchant(1), available, amount=1000)
        services.pending_create(
            code="payout_hold",
            reference="payout:1",
            idempotency_key="payout:1:hold",
            debit=available,
            credit=payouts,
            amount=700,
            no_overdraft=[available],
        )
    assert selectors.balance_get(ref=available).available == 300
    with pytest.raises(InsufficientFunds), transaction.atomic():
        services.pending_create(
            code="payout_hold",
            reference="payout:2",
            idempotency_key="payout:2:hold",
            debit=available,
            credit=payouts,
            amount=301,
            no_overdraft=[available],
        )
    assert selectors.balance_get(ref=available).available == 300


def test_postings_over_shared_accounts_in_any_leg_order_never_deadlock() -> None:
    accounts = [receivable(), merchant(1), merchant(2), merchant(3)]
    for ref in accounts:
        services.account_get_or_create(ref=ref, balance_shards=1)  # one row each: every posting meets the others
    threads_count, per_thread = 8, 25
    barrier = threading.Barrier(threads_count, timeout=60)
    errors: list[BaseException] = []

    @close_connection_after
    def poster(t: int) -> None:
        rng = random.Random(t)
        barrier.wait()
        try:
            for i in range(per_thread):
                a, b, c = rng.sample(accounts, 3)
                legs = [
                    Leg(account=a, side=Side.DEBIT, amount=2),
                    Leg(account=b, side=Side.CREDIT, amount=1),
                    Leg(account=c, side=Side.CREDIT, amount=1),
                ]
                rng.shuffle(legs)
                with transaction.atomic():
                    services.transaction_post(code="fee", reference=f"{t}:{i}", idempotency_key=f"{t}:{i}", legs=legs)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=poster, args=(t,)) for t in range(threads_count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    total = sum(
        selectors.balance_get(ref=ref).posted * (1 if ref.purpose == AccountPurpose.PROCESSOR_RECEIVABLE else -1)
        for ref in accounts
    )
    assert total == 0  # debits equal credits across the four accounts


def test_concurrent_postings_with_one_idempotency_key_make_one_ledger_transaction() -> None:
    for ref in (receivable(), merchant(1)):
        services.account_get_or_create(ref=ref)
    barrier = threading.Barrier(8, timeout=60)
    ids: list[int] = []
    lock = threading.Lock()

    @close_connection_after
    def post() -> None:
        barrier.wait()
        with transaction.atomic():
            txn = services.transaction_post(
                code="capture",
                reference="p1",
                idempotency_key="p1:capture",
                legs=[
                    Leg(account=receivable(), side=Side.DEBIT, amount=100),
                    Leg(account=merchant(1), side=Side.CREDIT, amount=100),
                ],
            )
        with lock:
            ids.append(txn.id)

    threads = [threading.Thread(target=post) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == 8 and len(set(ids)) == 1
    assert selectors.balance_get(ref=merchant(1)).posted == 100
