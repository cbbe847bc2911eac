"""Ledger services: ISO 4217 minor units, idempotency that refuses different content, reversals that
correct without editing, stored balances (sharded for the platform, one row for a merchant), two-phase pending
transactions.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
from django.db import transaction
from django.db.models import Count

from ledger import money, selectors, services
from ledger.contracts import AccountPurpose, AccountRef, Leg, Side, TransactionKind, TransactionPage, TransactionRecord
from ledger.errors import IdempotencyConflict, InvalidAmount, NotAHold, NotReversible, TransactionNotFound
from ledger.models import AccountBalance, Entry, LedgerTransaction
from payments import postings
from payments.models import Payment

pytestmark = pytest.mark.django_db

RECEIVABLE = AccountRef(owner="test:platform", purpose=AccountPurpose.PROCESSOR_RECEIVABLE, currency="EUR")
MERCHANT = AccountRef(owner="test:merchant:m1", purpose=AccountPurpose.MERCHANT_PENDING, currency="EUR")
AVAILABLE = AccountRef(owner="test:merchant:m1", purpose=AccountPurpose.MERCHANT_AVAILABLE, currency="EUR")


def legs(amount: int, debit: AccountRef = MERCHANT, credit: AccountRef = AVAILABLE) -> list[Leg]:
    return [Leg(account=debit, side=Side.DEBIT, amount=amount), Leg(account=credit, side=Side.CREDIT, amount=amount)]


def post(key: str, amount: int, **kwargs) -> TransactionRecord:
    with transaction.atomic():
        return services.transaction_post(
            code="settlement", reference=key, idempotency_key=key, legs=legs(amount), **kwargs
        )


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [("25.99", "EUR", 2599), ("1000", "JPY", 1000), ("1.005", "BHD", 1005), ("0.1", "EUR", 10), ("7", "BHD", 7000)],
)
def test_decimal_amounts_convert_to_minor_units_with_the_iso_4217_exponent(amount, currency, minor) -> None:
    assert money.minor_units(amount=amount, currency=currency) == minor
    assert money.minor_units(amount=Decimal(amount), currency=currency) == minor


@pytest.mark.parametrize(
    ("amount", "currency"),
    [("10.001", "EUR"), ("5.5", "JPY"), ("1.0005", "BHD"), ("-1", "EUR"), ("NaN", "EUR"), ("1e20", "EUR"),
     ("abc", "EUR"), (1.5, "EUR"), ("1", "XAU"), ("1", "eur"), ("1", "ZZZ")],
)  # fmt: skip
def test_an_amount_that_does_not_fit_the_currency_exponent_is_refused(amount, currency) -> None:
    with pytest.raises(InvalidAmount):
        money.minor_units(amount=amount, currency=currency)


def test_amounts_above_the_ledger_maximum_are_refused_and_nothing_is_written() -> None:
    with pytest.raises(InvalidAmount), transaction.atomic():
        services.transaction_post(code="x", reference="x", idempotency_key="x", legs=legs(money.MAX_AMOUNT + 1))
    assert not LedgerTransaction.objects.exists()


def test_reusing_an_idempotency_key_with_different_content_is_an_error_not_a_second_posting() -> None:
    first = post("s1", 500)
    assert post("s1", 500) == first  # the same step retried: the same record
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
        services.pending_post(
            pending_key=pending.idempotency_key, amount=600, code="capture", reference="p", idempotency_key="p:c"
        )
    with pytest.raises(IdempotencyConflict), transaction.atomic():
        services.pending_post(
            pending_key=pending.idempotency_key, amount=700, code="capture", reference="p", idempotency_key="p:c"
        )
    with pytest.raises(NotAHold), transaction.atomic():
        services.pending_void(pending_key="p:c", code="v", reference="p", idempotency_key="p:v")
    assert selectors.balance_get(ref=MERCHANT).posted == 600


def test_a_reversal_corrects_a_posting_with_a_new_transaction_pointing_to_it_and_only_once() -> None:
    original = post("s1", 500)
    with transaction.atomic():
        reversal = services.transaction_reverse(original_key=original.idempotency_key, idempotency_key="s1:reversal")
    assert reversal.reverses_id == original.id and reversal.code == "reversal" and reversal.reference == "s1"
    assert sorted(Entry.objects.filter(transaction_id=reversal.id).values_list("side", "amount")) == [
        ("credit", 500),
        ("debit", 500),
    ]
    assert selectors.balance_get(ref=AVAILABLE).posted == 0 and selectors.balance_get(ref=MERCHANT).posted == 0
    assert Entry.objects.filter(transaction_id=original.id).count() == 2  # the original is untouched
    with pytest.raises(NotReversible), transaction.atomic():
        services.transaction_reverse(original_key=original.idempotency_key, idempotency_key="s1:reversal-2")
    with transaction.atomic():  # retried under its own key: the same reversal
        assert (
            services.transaction_reverse(original_key=original.idempotency_key, idempotency_key="s1:reversal")
            == reversal
        )


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
        void = services.pending_void(
            pending_key=pending.idempotency_key, code="void_release", reference="p", idempotency_key="p:v"
        )
    for txn in (pending, void):
        with pytest.raises(NotReversible), transaction.atomic():
            services.transaction_reverse(original_key=txn.idempotency_key, idempotency_key=f"r{txn.id}")


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


# --- What crosses the boundary: contracts, never models; pending transactions named by their key ---------------


def test_services_and_selectors_return_frozen_records_and_a_replay_returns_the_same_record() -> None:
    with transaction.atomic():
        pending = services.pending_create(
            code="authorization_hold", reference="p", idempotency_key="p:h", debit=RECEIVABLE, credit=MERCHANT, amount=9
        )
        capture = services.pending_post(
            pending_key="p:h", amount=4, code="capture", reference="p", idempotency_key="p:c"
        )
    assert isinstance(pending, TransactionRecord) and isinstance(capture, TransactionRecord)
    with pytest.raises(dataclasses.FrozenInstanceError):
        pending.code = "other"  # type: ignore[misc]
    assert (pending.kind, capture.kind, capture.pending_of_id) == ("pending", "post_pending", pending.id)
    assert pending.kind is TransactionKind.PENDING
    assert {(e.account, e.side, e.pending, e.amount, e.currency) for e in pending.entries} == {
        (RECEIVABLE, Side.DEBIT, True, 9, "EUR"),
        (MERCHANT, Side.CREDIT, True, 9, "EUR"),
    }
    assert sorted((e.pending, e.side, e.amount) for e in capture.entries) == [
        (False, "credit", 4),
        (False, "debit", 4),
        (True, "credit", -9),
        (True, "debit", -9),
    ]
    with transaction.atomic():  # the same steps retried: the records of what was written, field for field
        assert (
            services.pending_post(pending_key="p:h", amount=4, code="capture", reference="p", idempotency_key="p:c")
            == capture
        )
    assert selectors.transactions_for_reference(reference="p") == [pending, capture]
    account = services.account_get_or_create(ref=MERCHANT)
    assert (account.ref, account.type, account.balance_shards) == (MERCHANT, "liability", 1)


def test_a_pending_transaction_or_original_that_is_not_in_the_ledger_is_transaction_not_found() -> None:
    with pytest.raises(TransactionNotFound), transaction.atomic():
        services.pending_post(pending_key="nope", amount=1, code="capture", reference="p", idempotency_key="p:c")
    with pytest.raises(LookupError), transaction.atomic():
        services.pending_void(pending_key="nope", code="void_release", reference="p", idempotency_key="p:v")
    with pytest.raises(TransactionNotFound), transaction.atomic():
        services.transaction_reverse(original_key="nope", idempotency_key="r")
    assert not LedgerTransaction.objects.exists()


def test_postings_resolve_an_authorization_by_its_key_and_say_so_when_the_ledger_has_none() -> None:
    payment = Payment(id="pay_nowhere", mode="test", currency="EUR", merchant_id="mer_x", amount=1000)
    with pytest.raises(LookupError, match="payment pay_nowhere has no authorization hold in the ledger"):
        with transaction.atomic():
            postings.post_capture(payment, amount=500)
    with transaction.atomic():
        authorization = postings.post_authorization(payment)
        capture = postings.post_capture(payment, amount=500)
    assert authorization.idempotency_key == "pay_nowhere:authorization_hold"
    assert (capture.code, capture.pending_of_id, capture.reference) == (
        "capture",
        authorization.id,
        "payment:pay_nowhere",
    )


def test_a_page_of_an_owners_transactions_is_ids_newest_first_either_way() -> None:
    ids = [post(f"s{i}", 1).id for i in range(5)]
    other = services.transaction_post(  # touches nobody of test:merchant:m1
        code="fee",
        reference="f",
        idempotency_key="f",
        legs=legs(
            1, debit=RECEIVABLE, credit=AccountRef(owner="test:platform", purpose=AccountPurpose.FEES, currency="EUR")
        ),
    )
    page = selectors.transaction_page_for_owner(owner="test:merchant:m1", limit=2)
    assert page == TransactionPage(ids=(ids[4], ids[3]), has_more=True)
    page = selectors.transaction_page_for_owner(owner="test:merchant:m1", limit=2, starting_after=ids[1])
    assert page == TransactionPage(ids=(ids[0],), has_more=False)
    page = selectors.transaction_page_for_owner(owner="test:merchant:m1", limit=2, ending_before=ids[1])
    assert page == TransactionPage(ids=(ids[3], ids[2]), has_more=True)
    assert other.id not in selectors.transaction_page_for_owner(owner="test:merchant:m1", limit=10).ids
