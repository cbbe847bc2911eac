"""§4–§6 A payment through the worker: authorize, capture, void, declines and processor failures, with the
ledger postings each step makes. The processor is the real sandbox acquirer over HTTP."""

from __future__ import annotations

import time

import pytest

from config.platform.outbox.models import OutboxMessage
from ledger.contracts import AccountPurpose, AccountRef
from ledger.models import LedgerTransaction
from ledger.selectors import balance_get
from payments.ledger_refs import merchant_owner, platform_owner
from payments.models import Event, Payment
from tests.conftest import Acquirer, MerchantClient, drain_once, drain_outbox, make_due, payment_body

pytestmark = pytest.mark.django_db(transaction=True)


def events_of(payment_id: str) -> list[str]:
    return list(Event.objects.filter(payment_id=payment_id).order_by("id").values_list("type", flat=True))


def ledger_codes(payment_id: str) -> list[tuple[str, str]]:
    return list(
        LedgerTransaction.objects.filter(reference=f"payment:{payment_id}").order_by("id").values_list("code", "kind")
    )


def merchant_pending(api: MerchantClient, currency: str = "EUR"):
    return balance_get(
        ref=AccountRef(
            owner=merchant_owner(merchant_id=api.merchant.pk, mode="test"),
            purpose=AccountPurpose.MERCHANT_PENDING,
            currency=currency,
        )
    )


def receivable(currency: str = "EUR"):
    return balance_get(
        ref=AccountRef(
            owner=platform_owner(mode="test"), purpose=AccountPurpose.PROCESSOR_RECEIVABLE, currency=currency
        )
    )


def test_automatic_payment_is_authorized_then_captured_with_balanced_ledger(api: MerchantClient, acquirer: Acquirer):
    payment_id = api.post("/v1/payments", payment_body(amount=2599)).json()["id"]

    drain_outbox()

    payment = api.get(f"/v1/payments/{payment_id}").json()
    assert payment["status"] == "captured"
    assert payment["amount_captured"] == 2599
    assert payment["psp_reference"] and len(payment["psp_reference"]) == 16
    assert payment["payment_method"]["card"] == {"brand": "visa", "bin": "424242", "last4": "4242", "country": "US"}
    assert events_of(payment_id) == ["payment.created", "payment.authorized", "payment.captured"]
    assert ledger_codes(payment_id) == [("authorization_hold", "pending"), ("capture", "post_pending")]
    assert merchant_pending(api).posted == 2599 and merchant_pending(api).pending == 0
    assert receivable().posted == 2599 and receivable().pending == 0
    assert len(acquirer.authorizations_for(payment_id)) == 1


def test_manual_payment_is_held_until_captured_partially(api: MerchantClient):
    payment_id = api.post("/v1/payments", payment_body(amount=5000, capture_method="manual")).json()["id"]
    drain_outbox()
    assert api.get(f"/v1/payments/{payment_id}").json()["status"] == "authorized"
    assert api.get(f"/v1/payments/{payment_id}").json()["amount_capturable"] == 5000
    held = merchant_pending(api)
    assert (held.posted, held.pending) == (0, 5000)

    response = api.post(f"/v1/payments/{payment_id}/capture", {"amount_to_capture": 3000})
    assert response.status_code == 202 and response.json()["status"] == "capturing"
    drain_outbox()

    payment = api.get(f"/v1/payments/{payment_id}").json()
    assert (payment["status"], payment["amount_captured"]) == ("captured", 3000)
    after = merchant_pending(api)
    assert (after.posted, after.pending) == (3000, 0)  # the remaining 2000 of the hold was released
    second = api.post(f"/v1/payments/{payment_id}/capture")
    assert second.status_code == 409 and second.json()["code"] == "payment_invalid_state"


def test_capture_above_the_authorized_amount_is_refused(api: MerchantClient):
    payment_id = api.post("/v1/payments", payment_body(amount=1000, capture_method="manual")).json()["id"]
    drain_outbox()
    response = api.post(f"/v1/payments/{payment_id}/capture", {"amount_to_capture": 1001})
    assert response.status_code == 400 and response.json()["code"] == "amount_invalid"
    assert Payment.objects.get(pk=payment_id).status == "authorized"


def test_manual_payment_can_be_voided_and_the_hold_is_released(api: MerchantClient, acquirer: Acquirer):
    payment_id = api.post("/v1/payments", payment_body(amount=700, capture_method="manual")).json()["id"]
    drain_outbox()

    response = api.post(f"/v1/payments/{payment_id}/void", {"reason": "requested_by_customer"})
    assert response.status_code == 202 and response.json()["status"] == "voiding"
    drain_outbox()

    payment = api.get(f"/v1/payments/{payment_id}").json()
    assert payment["status"] == "voided" and payment["void_reason"] == "requested_by_customer"
    assert events_of(payment_id) == ["payment.created", "payment.authorized", "payment.voided"]
    assert ledger_codes(payment_id) == [("authorization_hold", "pending"), ("void_release", "void_pending")]
    bal = merchant_pending(api)
    assert (bal.posted, bal.pending) == (0, 0)
    assert acquirer.authorizations_for(payment_id)[0]["state"] == "cancelled"
    assert api.post(f"/v1/payments/{payment_id}/capture").status_code == 409


def test_captured_payment_cannot_be_voided(api: MerchantClient):
    payment_id = api.post("/v1/payments", payment_body()).json()["id"]
    drain_outbox()
    response = api.post(f"/v1/payments/{payment_id}/void")
    assert response.status_code == 409 and response.json()["code"] == "payment_invalid_state"


@pytest.mark.parametrize(
    ("token", "code"),
    [
        ("tok_declined", "card_declined"),
        ("tok_insufficient_funds", "insufficient_funds"),
        ("tok_unknown_thing", "invalid_payment_method"),
    ],
)
def test_declined_payment_fails_and_posts_nothing(api: MerchantClient, token: str, code: str):
    payment_id = api.post("/v1/payments", payment_body(payment_method=token)).json()["id"]
    drain_outbox()

    payment = api.get(f"/v1/payments/{payment_id}").json()
    assert payment["status"] == "failed"
    assert payment["failure_code"] == code
    assert events_of(payment_id) == ["payment.created", "payment.failed"]
    assert ledger_codes(payment_id) == []


def test_processor_5xx_is_retried_then_the_payment_fails_without_posting(api: MerchantClient, settings):
    settings.OUTBOX_MAX_ATTEMPTS = 3
    payment_id = api.post("/v1/payments", payment_body(payment_method="tok_processor_error")).json()["id"]
    drain_outbox()

    payment = Payment.objects.get(pk=payment_id)
    assert (payment.status, payment.failure_code) == ("failed", "processor_error")
    row = OutboxMessage.objects.get(key=payment_id, topic="payment.created", subscriber="payments.processor")
    assert row.attempts == 3 and row.status == "done"
    assert ledger_codes(payment_id) == []


def test_processor_timeout_is_retried_with_the_same_idempotency_key_and_charges_once(
    api: MerchantClient, acquirer: Acquirer, settings
):
    """tok_timeout answers after the adapter's read timeout; the retry is answered from the acquirer's
    idempotency store, so the card is authorized exactly once."""
    settings.OUTBOX_BACKOFF_BASE = settings.OUTBOX_BACKOFF_CAP = 600.0
    payment_id = api.post("/v1/payments", payment_body(payment_method="tok_timeout")).json()["id"]

    assert drain_once() >= 1
    assert Payment.objects.get(pk=payment_id).status == "processing"
    row = OutboxMessage.objects.get(key=payment_id, topic="payment.created", subscriber="payments.processor")
    assert row.status == "pending" and "processor_timeout" in row.last_error
    assert drain_once() == 0 or Payment.objects.get(pk=payment_id).status == "processing"  # backing off

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not acquirer.authorizations_for(payment_id):
        time.sleep(0.1)  # wait until the acquirer finished the slow request
    make_due(key=payment_id)
    drain_outbox()

    payment = Payment.objects.get(pk=payment_id)
    assert payment.status == "captured"
    assert len(acquirer.authorizations_for(payment_id)) == 1
    assert ledger_codes(payment_id) == [("authorization_hold", "pending"), ("capture", "post_pending")]


def test_unreachable_processor_leaves_the_payment_processing_until_it_answers(api: MerchantClient, settings, acquirer):
    from payments.processors import get_processor
    from tests.conftest import processor_settings

    settings.PROCESSORS = processor_settings("http://127.0.0.1:9")  # nothing listens on the discard port
    settings.OUTBOX_BACKOFF_BASE = settings.OUTBOX_BACKOFF_CAP = 600.0
    get_processor.cache_clear()
    payment_id = api.post("/v1/payments", payment_body()).json()["id"]
    drain_once()
    row = OutboxMessage.objects.get(key=payment_id, subscriber="payments.processor")
    assert Payment.objects.get(pk=payment_id).status == "processing"
    assert (row.status, row.attempts) == ("pending", 1) and "processor_unreachable" in row.last_error

    settings.PROCESSORS = processor_settings(acquirer.url)
    get_processor.cache_clear()
    make_due(key=payment_id)
    drain_outbox()
    assert Payment.objects.get(pk=payment_id).status == "captured"


def test_handling_the_same_work_twice_changes_nothing(api: MerchantClient):
    """At-least-once delivery: re-running a finished row must be a no-op."""
    from config.platform.outbox import engine as outbox

    payment_id = api.post("/v1/payments", payment_body()).json()["id"]
    drain_outbox()
    OutboxMessage.objects.filter(key=payment_id).update(status="pending", locked_until=None)
    drain_outbox()

    assert events_of(payment_id) == ["payment.created", "payment.authorized", "payment.captured"]
    assert len(ledger_codes(payment_id)) == 2
    assert not outbox.has_due_work()
