"""Immutability you can prove: every `ledger_verify` check fails, naming the ledger transaction (or account),
when someone with superuser rights bypasses the triggers (`session_replication_role = replica`) and breaks its
invariant; the hash chain catches an edit that keeps every other invariant intact; the rows the triggers guard
cannot be changed without bypassing them.
"""

from __future__ import annotations

import io
import itertools
import json
import re
import threading
from collections.abc import Callable

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from ledger import chain, sealing, services
from ledger.contracts import AccountPurpose, AccountRef, Leg, Side, TransactionRecord
from ledger.models import AccountBalance, LedgerSeal, LedgerTransaction, VerificationRun
from tests.conftest import close_connection_after

pytestmark = pytest.mark.django_db(transaction=True)

RECEIVABLE = AccountRef(owner="test:platform", purpose=AccountPurpose.PROCESSOR_RECEIVABLE, currency="EUR")
MERCHANT = AccountRef(owner="test:merchant:m1", purpose=AccountPurpose.MERCHANT_PENDING, currency="EUR")
AVAILABLE = AccountRef(owner="test:merchant:m1", purpose=AccountPurpose.MERCHANT_AVAILABLE, currency="EUR")


def verify(*args: str) -> tuple[int, str]:
    """Run `manage.py ledger_verify`; returns (exit status, stdout)."""
    out = io.StringIO()
    try:
        call_command("ledger_verify", *args, stdout=out, stderr=io.StringIO())
        return 0, out.getvalue()
    except CommandError as exc:
        return exc.returncode, out.getvalue()


def failed_checks(output: str) -> set[str]:
    return set(re.findall(r"FAILED\S*\s+(\w+):", output))


def tamper(sql: str, params: list[object] | None = None) -> None:
    """Run `sql` as a superuser who switched every trigger off (session_replication_role = replica)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params)


def pending(amount: int = 1000, key: str = "p1", merchant: AccountRef = MERCHANT) -> TransactionRecord:
    with transaction.atomic():
        return services.pending_create(
            code="authorization_hold",
            reference=f"payment:{key}",
            idempotency_key=f"{key}:hold",
            debit=RECEIVABLE,
            credit=merchant,
            amount=amount,
        )


def capture(h: TransactionRecord, amount: int, key: str = "p1") -> TransactionRecord:
    with transaction.atomic():
        return services.pending_post(
            pending_key=h.idempotency_key,
            amount=amount,
            code="capture",
            reference=f"payment:{key}",
            idempotency_key=f"{key}:capture",
        )


def settle(amount: int, key: str = "s1") -> TransactionRecord:
    with transaction.atomic():
        return services.transaction_post(
            code="settlement",
            reference=key,
            idempotency_key=key,
            legs=[
                Leg(account=MERCHANT, side=Side.DEBIT, amount=amount),
                Leg(account=AVAILABLE, side=Side.CREDIT, amount=amount),
            ],
        )


def _unbalance() -> tuple[int, str]:
    h = pending()
    tamper("UPDATE ledger_entry SET amount = 999 WHERE transaction_id = %s AND side = 'debit'", [h.id])
    return h.id, "balanced"


def _single_entry() -> tuple[int, str]:
    h = pending()
    tamper("DELETE FROM ledger_entry WHERE transaction_id = %s AND side = 'credit'", [h.id])
    return h.id, "two_or_more_entries"


def _foreign_currency() -> tuple[int, str]:
    h = pending()
    tamper("UPDATE ledger_entry SET currency = 'USD' WHERE transaction_id = %s", [h.id])
    return h.id, "entry_currency"


def _resolution_of_a_non_pending() -> tuple[int, str]:
    h = pending()
    c = capture(h, 400)
    tamper("UPDATE ledger_transaction SET kind = 'posted' WHERE id = %s", [h.id])
    return c.id, "holds_resolve_once"


def _inexact_release() -> tuple[int, str]:
    c = capture(pending(), 400)
    tamper("UPDATE ledger_entry SET amount = -900 WHERE transaction_id = %s AND pending", [c.id])
    return c.id, "hold_release_exact"


def _negative_pending() -> tuple[int, str]:
    h = pending()
    capture(h, 400)
    tamper("UPDATE ledger_entry SET amount = 10 WHERE transaction_id = %s AND pending", [h.id])
    account = AccountBalance.objects.filter(account__owner=MERCHANT.owner).values_list("account_id", flat=True)[0]
    return account, "pending_not_negative"


def _stored_balance_edited() -> tuple[int, str]:
    pending()
    account = AccountBalance.objects.filter(account__owner=MERCHANT.owner).values_list("account_id", flat=True)[0]
    tamper("UPDATE ledger_balance SET pending_credits = pending_credits + 1 WHERE account_id = %s", [account])
    return account, "stored_balances"


def _reversal_not_a_mirror() -> tuple[int, str]:
    original = settle(500)
    with transaction.atomic():
        reversal = services.transaction_reverse(original_key=original.idempotency_key, idempotency_key="s1:reversal")
    tamper("UPDATE ledger_entry SET amount = 400 WHERE transaction_id = %s", [reversal.id])
    return reversal.id, "reversals_mirror"


def _sealed_transaction_edited() -> tuple[int, str]:
    """A consistent edit: both entries and the stored balances changed together. Only the chain sees it."""
    posted = settle(500)
    sealing.chain_seal()
    tamper("UPDATE ledger_entry SET amount = 50 WHERE transaction_id = %s", [posted.id])
    tamper(
        "UPDATE ledger_balance SET posted_debits = posted_debits - 450 WHERE account_id = "
        "(SELECT id FROM ledger_account WHERE owner = %s AND purpose = 'pending')",
        [MERCHANT.owner],
    )
    tamper(
        "UPDATE ledger_balance SET posted_credits = posted_credits - 450 WHERE account_id = "
        "(SELECT id FROM ledger_account WHERE owner = %s AND purpose = 'available')",
        [MERCHANT.owner],
    )
    return posted.id, "hash_chain"


def _seal_removed() -> tuple[int, str]:
    settle(100, "s1")
    second = settle(200, "s2")
    third = settle(300, "s3")
    sealing.chain_seal()
    tamper("DELETE FROM ledger_seal WHERE transaction_id = %s", [second.id])
    return third.id, "hash_chain"


TAMPERINGS: dict[str, Callable[[], tuple[int, str]]] = {
    "an entry's amount changed": _unbalance,
    "an entry deleted": _single_entry,
    "an entry's currency changed": _foreign_currency,
    "a resolved pending transaction turned into a posted one": _resolution_of_a_non_pending,
    "a release that does not release its pending transaction exactly": _inexact_release,
    "a pending transaction made smaller than its release": _negative_pending,
    "a stored balance edited": _stored_balance_edited,
    "a reversal that does not mirror its original": _reversal_not_a_mirror,
    "a sealed transaction edited consistently": _sealed_transaction_edited,
    "a seal deleted": _seal_removed,
}


@pytest.mark.ledger_tampered
@pytest.mark.parametrize("tampering", list(TAMPERINGS), ids=list(TAMPERINGS))
def test_ledger_verify_fails_and_names_what_a_bypass_of_the_triggers_broke(tampering: str) -> None:
    assert verify()[0] == 0
    culprit, check = TAMPERINGS[tampering]()
    code, out = verify()
    assert code == 1
    assert check in failed_checks(out), out
    named = f"account {culprit}" if check in ("stored_balances", "pending_not_negative") else f"transaction {culprit}"
    assert named in out, out


@pytest.mark.ledger_tampered
def test_a_consistent_edit_of_a_sealed_transaction_is_caught_only_by_the_hash_chain() -> None:
    culprit, _ = _sealed_transaction_edited()
    code, out = verify()
    assert code == 1
    assert failed_checks(out) == {"hash_chain"}
    assert f"ledger transaction {culprit} was changed after it was sealed" in out


@pytest.mark.ledger_tampered
def test_rebuilding_the_chain_after_a_verification_run_is_caught_by_the_recorded_head() -> None:
    settle(100, "s1")
    sealing.chain_seal()
    assert verify()[0] == 0  # records the head
    recorded = VerificationRun.objects.order_by("-id").first()
    # The attacker edits the sealed transaction and recomputes its seal so the chain is self-consistent again.
    seal = LedgerSeal.objects.get(seq=recorded.head_seq)
    tamper("UPDATE ledger_entry SET amount = 7 WHERE transaction_id = %s", [seal.transaction_id])
    content = chain.content_hashes([seal.transaction_id])[seal.transaction_id]
    link = chain.link_hash(
        prev_hash=seal.prev_hash, seq=seal.seq, transaction_id=seal.transaction_id, content_hash=content
    )
    tamper("UPDATE ledger_seal SET content_hash = %s, hash = %s WHERE seq = %s", [content, link, seal.seq])
    tamper("UPDATE ledger_balance SET posted_debits = 0, posted_credits = 0 WHERE posted_debits = 100")
    tamper(
        "UPDATE ledger_balance b SET posted_debits = 7 FROM ledger_account a WHERE a.id = b.account_id "
        "AND a.purpose = 'pending' AND b.shard = 0"
    )
    tamper(
        "UPDATE ledger_balance b SET posted_credits = 7 FROM ledger_account a WHERE a.id = b.account_id "
        "AND a.purpose = 'available' AND b.shard = 0"
    )
    code, out = verify()
    assert code == 1
    assert failed_checks(out) == {"hash_chain"}, out
    assert f"ledger transaction {seal.transaction_id}: seal {seal.seq} differs from the head recorded by run" in out


@pytest.mark.ledger_tampered
def test_a_transaction_left_unsealed_past_the_grace_period_fails_verification(settings) -> None:
    h = pending()
    settings.LEDGER_SEAL_GRACE = 0
    code, out = verify()
    assert code == 1 and failed_checks(out) == {"sealed_in_time"}
    assert f"ledger transaction {h.id}" in out
    assert verify("--seal")[0] == 0


def test_the_sealer_chains_every_committed_transaction_once_in_order_and_verify_rehashes_them() -> None:
    h = pending()
    c = capture(h, 600)
    first = sealing.chain_seal()
    assert (first.sealed, first.head_seq) == (2, 2)
    assert sealing.chain_seal().sealed == 0  # nothing new
    s = settle(600)
    report = sealing.chain_seal()
    assert report.sealed == 1
    seals = list(LedgerSeal.objects.order_by("seq"))
    assert [x.transaction_id for x in seals] == [h.id, c.id, s.id]
    assert seals[0].prev_hash == chain.GENESIS
    assert all(later.prev_hash == earlier.hash for earlier, later in itertools.pairwise(seals))
    assert report.head_hash == seals[-1].hash
    code, out = verify()
    assert code == 0
    assert "hash_chain: the SHA-256 chain" in out and "(3 examined)" in out


def test_a_transaction_committed_after_a_later_one_was_sealed_is_sealed_in_the_next_run() -> None:
    """The chain's order is the order the sealer sees commits in: a late commit with a lower id is not skipped."""
    other = AccountRef(owner="test:merchant:m2", purpose=AccountPurpose.MERCHANT_PENDING, currency="EUR")
    for ref in (RECEIVABLE, MERCHANT, other):
        services.account_get_or_create(ref=ref)
    sealed_meanwhile: list[int] = []

    @close_connection_after
    def later() -> None:
        pending(200, "later", merchant=other)
        sealed_meanwhile.append(sealing.chain_seal().sealed)

    with transaction.atomic():
        early = pending(100, "early")  # takes the lower id, but commits after `later` was sealed
        t = threading.Thread(target=later)
        t.start()
        t.join()
    assert sealed_meanwhile == [1]
    assert not LedgerSeal.objects.filter(transaction_id=early.id).exists()
    assert sealing.chain_seal().sealed == 1
    assert LedgerSeal.objects.get(transaction_id=early.id).seq == 2
    assert verify()[0] == 0


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE ledger_seal SET hash = 'x'",
        "DELETE FROM ledger_seal",
        "UPDATE ledger_balance SET posted_credits = posted_credits + 1",
        "DELETE FROM ledger_balance",
        "INSERT INTO ledger_balance (account_id, shard, posted_debits, posted_credits, pending_debits, "
        "pending_credits) SELECT id, 99, 0, 5, 0, 0 FROM ledger_account LIMIT 1",
        "UPDATE ledger_account SET owner = 'test:merchant:thief'",
        "DELETE FROM ledger_account",
        "UPDATE ledger_verification_run SET ok = true",
    ],
)
def test_guarded_rows_cannot_be_changed_without_bypassing_the_triggers(sql: str) -> None:
    settle(100)
    sealing.chain_seal()
    assert verify()[0] == 0
    before = verify("--format", "json")[1]
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)
    after = json.loads(verify("--format", "json")[1])
    assert after["ok"] is True
    assert after["chain"] == json.loads(before)["chain"]
    assert LedgerTransaction.objects.count() == 1


def test_ledger_verify_prints_every_check_a_progress_bar_and_records_the_run() -> None:
    settle(100, "s1")
    settle(200, "s2")
    out, err = io.StringIO(), io.StringIO()
    call_command("ledger_verify", "--seal", "--progress", "always", stdout=out, stderr=err)
    for name in (
        "balanced",
        "two_or_more_entries",
        "entry_currency",
        "holds_resolve_once",
        "hold_release_exact",
        "pending_not_negative",
        "stored_balances",
        "reversals_mirror",
        "hash_chain",
        "sealed_in_time",
    ):
        assert re.search(rf"ok\S*\s+{name}: ", out.getvalue()), name
    assert "hash chain [" in err.getvalue() and "100%  2/2 sealed ledger transactions" in err.getvalue()
    run = VerificationRun.objects.get()
    assert (run.ok, run.failures, run.source, run.head_seq) == (True, 0, "command", 2)
    assert f"recorded as verification run {run.pk}: ok" in out.getvalue()
