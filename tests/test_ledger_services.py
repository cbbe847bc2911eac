"""§1–§2 Ledger services: ISO 4217 minor units, idempotency that refuses different content, reversals that
correct without editing, stored balances (sharded for the platform, one row for a merchant), two-phase pending
transactions.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import transaction
from django.db.models import Count

from ledger import selectors, services
from ledger.contracts import AccountPurpose, AccountRef, Leg, Side
from ledger.errors import IdempotencyConflict, InvalidAmount, NotAHold, NotReversible
from ledger.models import AccountBalance, Entry, LedgerTransaction

pytestmark = pytest.mark.django_db

RECEIVABLE = AccountRef(owner="test:platform", purpose=AccountPurpose.PROCESSOR_RECEIVABLE, currency="EUR")
MERCHANT = AccountRef(owner="test:merchant:m1", purpose=AccountPurpose.MERCHANT_PENDING, currency="EUR")
AVAILABLE = AccountRef(owner="test:merchant:m1", purpose=AccountPurpose.MERCHANT_AVAILABLE, currency="EUR")


def legs(amount: int, debit: AccountRef = MERCHANT, credit: AccountRef = AVAILABLE) -> list[Leg]:
    return [Leg(account=debit, side=Side.DEBIT, amount=amount), Leg(account=credit, side=Side.CREDIT, amount=amount)]


def post(key: str, amount: int, **kwargs) -> LedgerTransaction:
    with transaction.atomic():
        return services.transaction_post(
            code="settlement", reference=key, idempotency_key=key, legs=legs(amount), **kwargs
        )


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [("25.99", "EUR", 2599), ("1000", "JPY", 1000), ("1.005", "BHD", 1005), ("0.1", "EUR", 10), ("7", "BHD", 7000)],
)
def test_decimal_amounts_convert_to_minor_units_with_the_iso_4217_exponent(amount, currency, minor) -> None:
    assert services.minor_units(amount=amount, currency=currency) == minor
    assert services.minor_units(amount=Decimal(amount), currency=currency) == minor


@pytest.mark.parametrize(
    ("amount", "currency"),
    [("10.001", "EUR"), ("5.5", "JPY"), ("1.0005", "BHD"), ("-1", "EUR"), ("NaN", "EUR"), ("1e20", "EUR"),
     ("abc", "EUR"), (1.5, "EUR"), ("1", "XAU"), ("1", "eur"), ("1", "ZZZ")],
)  # fmt: skip
def test_an_amount_that_does_not_fit_the_currency_exponent_is_refused(amount, currency) -> None:
    with pytest.raises(InvalidAmount):
        services.minor_units(amount=amount, currency=currency)


def test_amounts_above_the_ledger_maximum_are_refused_and_nothing_is_written() -> None:
    with pytest.raises(InvalidAmount), transaction.atomic():
        services.transaction_post(code="x", reference="x", idempotency_key="x", legs=legs(services.MAX_AMOUNT + 1))
    assert not LedgerTransaction.objects.exists()


def test_reusing_an_idempotency_key_with_different_content_is_an_error_not_a_second_posting() -> None:
    first = post("s1", 500)
    assert post("s1", 500).pk == first.pk  # the same step retried
    with pytest.raises(IdempotencyConflict), transaction.atomic():
        services.transaction_post(code="settlement", reference="s1", idempotency_key="s1", legs=legs(501))
    with pytest.raises(IdempotencyConflict), transaction.atomic():
        services.transaction_post(code="refund", reference="s1", idempotency_key="s1", legs=legs(500))
    assert LedgerTransaction.objects.count() == 1
    assert selectors.balance_get(ref=AVAILABLE).posted == 500


def test_capturing_a_pending_transaction_again_under_its_key_with_another_amount_is_an_idempotency_conflict() -> None:
    with transaction.atomic():
        pending = services.pending_create(
            code="authorization_hold",
            reference="p",
            idempotency_key="p:h",
            debit=RECEIVABLE,
            credit=MERCHANT,
            amount=900,
        )
        services.pending_post(pending=pending, amount=600, code="capture", reference="p", idempotency_key="p:c")
    with pytest.raises(IdempotencyConflict), transaction.atomic():
        services.pending_post(pending=pending, amount=700, code="capture", reference="p", idempotency_key="p:c")
    with pytest.raises(NotAHold), transaction.atomic():
        services.pending_void(
            pending=LedgerTransaction.objects.get(idempotency_key="p:c"), code="v", reference="p", idempotency_key="p:v"
        )
    assert selectors.balance_get(ref=MERCHANT).posted == 600


def test_a_reversal_corrects_a_posting_with_a_new_transaction_pointing_to_it_and_only_once() -> None:
    original = post("s1", 500)
    with transaction.atomic():
        reversal = services.transaction_reverse(original=original, idempotency_key="s1:reversal")
    assert reversal.reverses_id == original.pk and reversal.code == "reversal" and reversal.reference == "s1"
    assert sorted(Entry.objects.filter(transaction=reversal).values_list("side", "amount")) == [
        ("credit", 500),
        ("debit", 500),
    ]
    assert selectors.balance_get(ref=AVAILABLE).posted == 0 and selectors.balance_get(ref=MERCHANT).posted == 0
    assert Entry.objects.filter(transaction=original).count() == 2  # the original is untouched
    with pytest.raises(NotReversible), transaction.atomic():
        services.transaction_reverse(original=original, idempotency_key="s1:reversal-2")
    with transaction.atomic():  # retried under its own key: the same reversal
        assert services.transaction_reverse(original=original, idempotency_key="s1:reversal").pk == reversal.pk


def test_pending_transactions_and_voids_cannot_be_reversed() -> None:
    with transaction.atomic():
        pending = services.pending_create(
            code="authorization_hold",
            reference="p",
            idempotency_key="p:h",
            debit=RECEIVABLE,
            credit=MERCHANT,
            amount=900,
        )
        void = services.pending_void(pending=pending, code="void_release", reference="p", idempotency_key="p:v")
    for txn in (pending, void):
        with pytest.raises(NotReversible), transaction.atomic():
            services.transaction_reverse(original=txn, idempotency_key=f"r{txn.pk}")


def test_platform_accounts_get_sharded_balance_rows_and_merchant_accounts_one(settings) -> None:
    settings.LEDGER_BALANCE_SHARDS = 8
    post("s1", 1)
    with transaction.atomic():
        services.transaction_post(code="fee", reference="f", idempotency_key="f", legs=legs(1, debit=RECEIVABLE))
    rows = dict(AccountBalance.objects.values_list("account__purpose").annotate(n=Count("id")))
    assert rows == {"pending": 1, "available": 1, "processor_receivable": 8}


def test_balances_are_read_from_stored_rows_that_add_up_across_shards() -> None:
    for i in range(20):
        with transaction.atomic():
            services.transaction_post(
                code="fee", reference=f"f{i}", idempotency_key=f"f{i}", legs=legs(10, debit=RECEIVABLE, credit=MERCHANT)
            )
    used = AccountBalance.objects.filter(account__purpose="processor_receivable").exclude(posted_debits=0)
    assert used.count() == 16  # consecutive ledger transactions spread over every shard
    assert selectors.balance_get(ref=RECEIVABLE).posted == 200
    assert selectors.balances_for_owner(owner="test:merchant:m1")[("pending", "EUR")].posted == 200
