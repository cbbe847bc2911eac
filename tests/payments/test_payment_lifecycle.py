"""A payment through the worker: authorize, capture, void, declines and processor failures, with the
ledger postings each step makes. The processor is the real sandbox acquirer over HTTP."""

from __future__ import annotations

import time
from typing import Any

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


def _one_payment_at_each_step(api: MerchantClient, settings, processor_url: str, **adapter: Any) -> dict[str, str]:
    """Payments ready for each worker step; then the processor is swapped (`processor_url`, `adapter` settings) and
    each step is requested: authorize, capture, void, refund, expiry cancel. Returns their ids (and the refund's)."""
    from datetime import timedelta

    from django.utils import timezone

    from payments import services
    from payments.processors import get_processor
    from tests.conftest import authorized_payment, captured_payment, processor_settings

    ids = {
        "capture": authorized_payment(api),
        "void": authorized_payment(api),
        "expiry_cancel": authorized_payment(api),
        "refund": captured_payment(api),
    }
    settings.PROCESSORS = {"sandbox": processor_settings(processor_url)["sandbox"] | adapter}
    get_processor.cache_clear()
    ids["authorize"] = api.post("/v1/payments", payment_body()).json()["id"]
    assert api.post(f"/v1/payments/{ids['capture']}/capture", {}).status_code == 202
    assert api.post(f"/v1/payments/{ids['void']}/void", {}).status_code == 202
    ids["refund_id"] = api.post("/v1/refunds", {"payment": ids["refund"]}).json()["id"]
    services.payment_expire(payment_id=ids["expiry_cancel"], now=timezone.now() + timedelta(days=30))
    return ids


def _worker_warnings(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in r.msg.items() if k in ("event", "payment_id", "refund_id", "code", "attempt")}
        for r in caplog.records
        if isinstance(r.msg, dict) and r.levelname == "WARNING" and r.msg.get("event", "").startswith("payments.")
    ]


def _assert_each_step_ended(api: MerchantClient, ids: dict[str, str], *, code: str, authorize_code: str) -> None:
    payment = {step: Payment.objects.get(pk=ids[step]) for step in ("authorize", "capture", "void", "expiry_cancel")}
    assert (payment["authorize"].status, payment["authorize"].failure_code) == ("failed", authorize_code)
    assert (payment["capture"].status, payment["capture"].failure_code) == ("authorized", code)
    assert (payment["void"].status, payment["void"].failure_code) == ("authorized", code)
    assert payment["expiry_cancel"].status == "expired"
    assert events_of(ids["capture"])[-1] == "payment.capture_failed"
    assert events_of(ids["void"])[-1] == "payment.void_failed"
    refund = api.get(f"/v1/refunds/{ids['refund_id']}").json()
    assert (refund["status"], refund["failure_code"]) == ("failed", code)
    assert not OutboxMessage.objects.filter(subscriber="payments.processor").exclude(status="done").exists()


def test_a_processor_unreachable_until_the_last_attempt_ends_every_step_with_its_failure(
    api: MerchantClient, settings, caplog: pytest.LogCaptureFixture
):
    """A retryable error is retried while attempts remain; the last attempt records the failure (authorization
    failed, capture or void back to `authorized`, refund failed, expiry cancel only logged)."""
    settings.OUTBOX_MAX_ATTEMPTS = 2
    ids = _one_payment_at_each_step(api, settings, "http://127.0.0.1:9")  # nothing listens on the discard port
    drain_once()
    rows = OutboxMessage.objects.filter(subscriber="payments.processor").exclude(status="done")
    assert {(r.key, r.status, r.attempts) for r in rows} == {
        (ids[step], "pending", 1) for step in ("authorize", "capture", "void", "refund", "expiry_cancel")
    }
    assert Payment.objects.get(pk=ids["capture"]).status == "capturing"

    make_due()
    with caplog.at_level("INFO"):
        drain_once()

    _assert_each_step_ended(api, ids, code="processor_unreachable", authorize_code="processor_unreachable")
    code = "processor_unreachable"
    assert sorted(_worker_warnings(caplog), key=lambda m: m["event"]) == [
        {"event": "payments.authorize.gave_up", "payment_id": ids["authorize"], "code": code, "attempt": 2},
        {"event": "payments.expiry_cancel.refused", "payment_id": ids["expiry_cancel"], "code": code},
        {
            "event": "payments.refund.failed",
            "payment_id": ids["refund"],
            "refund_id": ids["refund_id"],
            "code": code,
            "attempt": 2,
        },
    ]


def test_a_processor_refusal_ends_every_step_at_the_first_attempt(
    api: MerchantClient, settings, acquirer: Acquirer, caplog: pytest.LogCaptureFixture
):
    """A refusal (here 401 `unauthorized`: a wrong API key) is not retried: a refused authorization fails with
    `processor_declined`, the other steps record the processor's code."""
    ids = _one_payment_at_each_step(api, settings, acquirer.url, API_KEY="not-the-acquirer-key")
    with caplog.at_level("INFO"):
        drain_once()

    _assert_each_step_ended(api, ids, code="unauthorized", authorize_code="processor_declined")
    assert Payment.objects.get(pk=ids["authorize"]).failure_message == "Missing or invalid API key"
    assert set(
        OutboxMessage.objects.filter(subscriber="payments.processor", key__in=ids.values()).values_list(
            "attempts", flat=True
        )
    ) == {1}
    code = "unauthorized"
    assert sorted(_worker_warnings(caplog), key=lambda m: m["event"]) == [
        {"event": "payments.authorize.gave_up", "payment_id": ids["authorize"], "code": code, "attempt": 1},
        {"event": "payments.expiry_cancel.refused", "payment_id": ids["expiry_cancel"], "code": code},
        {
            "event": "payments.refund.failed",
            "payment_id": ids["refund"],
            "refund_id": ids["refund_id"],
            "code": code,
            "attempt": 1,
        },
    ]
