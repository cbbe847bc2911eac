"""Ledger: double entry, pending transactions that resolve once, immutability enforced by PostgreSQL,
ledger_verify."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, IntegrityError, connection, transaction

from ledger import services
from ledger.contracts import AccountPurpose, AccountRef, Leg, Side, TransactionRecord
from ledger.errors import HoldAlreadyResolved, HoldAmountExceeded, InvalidAmount, UnbalancedTransaction
from ledger.models import Entry, LedgerTransaction
from ledger.selectors import balance_get

pytestmark = pytest.mark.django_db(transaction=True)

RECEIVABLE = AccountRef(owner="test:platform", purpose=AccountPurpose.PROCESSOR_RECEIVABLE, currency="EUR")
MERCHANT = AccountRef(owner="test:merchant:m1", purpose=AccountPurpose.MERCHANT_PENDING, currency="EUR")


def pending(amount: int = 1000, key: str = "p1") -> TransactionRecord:
    with transaction.atomic():
        return services.pending_create(
            code="authorization_hold",
            reference=f"payment:{key}",
            idempotency_key=f"{key}:hold",
            debit=RECEIVABLE,
            credit=MERCHANT,
            amount=amount,
        )


def verify() -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("ledger_verify", stdout=out)
        return 0, out.getvalue()
    except CommandError as exc:
        return exc.returncode, out.getvalue()


def test_a_pending_transaction_shows_in_pending_not_posted_and_capture_posts_part_and_releases_the_rest():
    h = pending(1000)
    m = balance_get(ref=MERCHANT)
    assert (m.posted, m.pending, m.available) == (0, 1000, 0)
    r = balance_get(ref=RECEIVABLE)
    assert (r.posted, r.pending) == (0, 1000)

    with transaction.atomic():
        services.pending_post(
            pending_key=h.idempotency_key,
            amount=600,
            code="capture",
            reference="payment:p1",
            idempotency_key="p1:capture",
        )

    m = balance_get(ref=MERCHANT)
    assert (m.posted, m.pending, m.available) == (600, 0, 600)
    r = balance_get(ref=RECEIVABLE)
    assert (r.posted, r.pending) == (600, 0)
    assert verify()[0] == 0


def test_a_pending_transaction_resolves_once():
    h = pending(500)
    with transaction.atomic():
        services.pending_void(
            pending_key=h.idempotency_key, code="void_release", reference="payment:p1", idempotency_key="p1:void"
        )
    with pytest.raises(HoldAlreadyResolved), transaction.atomic():
        services.pending_post(
            pending_key=h.idempotency_key,
            amount=500,
            code="capture",
            reference="payment:p1",
            idempotency_key="p1:capture",
        )
    with pytest.raises(HoldAlreadyResolved), transaction.atomic():
        services.pending_void(
            pending_key=h.idempotency_key, code="void_release", reference="payment:p1", idempotency_key="p1:void-again"
        )
    # The same step retried with the same idempotency key is not a second resolution: it returns the first.
    with transaction.atomic():
        again = services.pending_void(
            pending_key=h.idempotency_key, code="void_release", reference="payment:p1", idempotency_key="p1:void"
        )
    assert LedgerTransaction.objects.filter(pending_of_id=h.id).count() == 1
    assert again.pending_of_id == h.id
    assert balance_get(ref=MERCHANT).pending == 0


def test_the_database_refuses_a_second_resolution_even_past_the_service():
    h = pending(500)
    with transaction.atomic():
        services.pending_void(
            pending_key=h.idempotency_key, code="void_release", reference="payment:p1", idempotency_key="p1:void"
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerTransaction.objects.create(
            code="capture", kind="post_pending", reference="payment:p1", idempotency_key="x", pending_of_id=h.id
        )


def test_capture_above_the_pending_amount_is_refused():
    h = pending(500)
    with pytest.raises(HoldAmountExceeded), transaction.atomic():
        services.pending_post(
            pending_key=h.idempotency_key, amount=501, code="capture", reference="payment:p1", idempotency_key="p1:c"
        )


def test_posting_is_idempotent_on_its_key():
    first = pending(700)
    second = pending(700)
    assert first == second  # the same record, nothing written
    assert balance_get(ref=MERCHANT).pending == 700


@pytest.mark.parametrize(
    "legs",
    [
        [Leg(account=RECEIVABLE, side=Side.DEBIT, amount=100), Leg(account=MERCHANT, side=Side.CREDIT, amount=99)],
        [Leg(account=RECEIVABLE, side=Side.DEBIT, amount=100)],
    ],
)
def test_unbalanced_legs_are_refused_by_the_service(legs):
    with pytest.raises(UnbalancedTransaction), transaction.atomic():
        services.transaction_post(code="fee", reference="x", idempotency_key="x", legs=legs)
    assert not LedgerTransaction.objects.exists()


@pytest.mark.parametrize("amount", [0, -5, 1.5, "100", True])
def test_amounts_must_be_positive_integers_of_minor_units(amount):
    legs = [
        Leg(account=RECEIVABLE, side=Side.DEBIT, amount=amount),
        Leg(account=MERCHANT, side=Side.CREDIT, amount=amount),
    ]
    with pytest.raises(InvalidAmount), transaction.atomic():
        services.transaction_post(code="fee", reference="x", idempotency_key="x", legs=legs)


def test_unknown_currency_is_refused():
    bad = AccountRef(owner="test:platform", purpose=AccountPurpose.FEES, currency="ZZZ")
    with pytest.raises(InvalidAmount):
        services.account_get_or_create(ref=bad)


def test_update_of_a_ledger_entry_is_refused_by_the_database():
    pending(1000)
    with pytest.raises(DatabaseError, match="Cannot update"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE ledger_entry SET amount = 1")
    with pytest.raises(DatabaseError), transaction.atomic():
        Entry.objects.update(amount=2)
    assert set(Entry.objects.values_list("amount", flat=True)) == {1000}


def test_delete_of_ledger_rows_is_refused_by_the_database():
    pending(1000)
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM ledger_entry")
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE ledger_transaction SET code = 'other'")
    assert Entry.objects.count() == 2


def test_an_unbalanced_transaction_written_with_raw_sql_cannot_commit():
    services.account_get_or_create(ref=RECEIVABLE)
    with pytest.raises(IntegrityError, match="does not balance"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ledger_transaction (code, kind, reference, idempotency_key, description, created_at)"
            " VALUES ('fee', 'posted', 'raw', 'raw', '', now()) RETURNING id"
        )
        txn_id = cursor.fetchone()[0]
        for side, amount in (("debit", 100), ("credit", 90)):
            cursor.execute(
                "INSERT INTO ledger_entry (transaction_id, account_id, side, pending, amount, currency)"
                " SELECT %s, id, %s, false, %s, 'EUR' FROM ledger_account LIMIT 1",
                [txn_id, side, amount],
            )
    assert not LedgerTransaction.objects.filter(reference="raw").exists()


def test_a_transaction_with_a_single_entry_cannot_commit():
    services.account_get_or_create(ref=RECEIVABLE)
    with pytest.raises(IntegrityError, match="fewer than two"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ledger_transaction (code, kind, reference, idempotency_key, description, created_at)"
            " VALUES ('fee', 'posted', 'raw1', 'raw1', '', now())"
        )


@pytest.mark.ledger_tampered
def test_ledger_verify_passes_on_a_sound_ledger_and_fails_naming_a_tampered_transaction():
    h = pending(1000)
    code, out = verify()
    assert code == 0 and "balanced" in out and "FAILED" not in out

    # Someone with superuser rights bypasses the trigger and edits an entry.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("ALTER TABLE ledger_entry DISABLE TRIGGER USER")
        cursor.execute("UPDATE ledger_entry SET amount = 999 WHERE transaction_id = %s AND side = 'debit'", [h.id])
        cursor.execute("ALTER TABLE ledger_entry ENABLE TRIGGER USER")

    code, out = verify()
    assert code == 1
    assert f"ledger transaction {h.id}" in out
    assert "FAILED" in out
