"""The payment state machine (django-fsm-2): every transition guarded, the row locked, authorizations expiring
after a configurable time with the hold released and `payment.expired` emitted."""

from __future__ import annotations

from datetime import timedelta

import pytest

from config.platform.outbox.models import OutboxMessage
from ledger.contracts import AccountPurpose, AccountRef
from ledger.models import LedgerTransaction
from ledger.selectors import balance_get
from payments import services, tasks
from payments.errors import InvalidState
from payments.ledger_refs import merchant_owner
from payments.models import Event, Payment, PaymentStatus
from tests.conftest import Acquirer, MerchantClient, authorized_payment, captured_payment, drain_outbox, payment_body

pytestmark = pytest.mark.django_db(transaction=True)


def held(api: MerchantClient) -> tuple[int, int]:
    """(posted, pending) of the merchant's EUR pending account."""
    bal = balance_get(
        ref=AccountRef(
            owner=merchant_owner(merchant_id=api.merchant.pk, mode="test"),
            purpose=AccountPurpose.MERCHANT_PENDING,
            currency="EUR",
        )
    )
    return bal.posted, bal.pending


def test_the_status_cannot_be_assigned_directly(api: MerchantClient):
    payment = Payment.objects.get(pk=api.post("/v1/payments", payment_body()).json()["id"])
    with pytest.raises(AttributeError):
        payment.status = PaymentStatus.CAPTURED
    payment.refresh_from_db()  # reading back is still allowed
    assert payment.status == PaymentStatus.PROCESSING


def test_the_transition_table_is_the_documented_lifecycle():
    assert services.TRANSITIONS == {
        "processing": {"authorized", "failed"},
        "authorized": {"capturing", "voiding", "expired"},
        "capturing": {"captured", "authorized"},
        "voiding": {"voided", "authorized"},
        "captured": {"partially_refunded", "refunded"},
        "partially_refunded": {"partially_refunded", "refunded"},
    }


ALL_STATES = [s.value for s in PaymentStatus]


@pytest.mark.parametrize("state", ALL_STATES)
def test_capture_and_void_are_allowed_only_from_authorized(api: MerchantClient, state: str):
    payment_id = api.post("/v1/payments", payment_body(capture_method="manual")).json()["id"]
    Payment.objects.filter(pk=payment_id).update(status=state)  # put the row in `state`, past the state machine

    capture = api.post(f"/v1/payments/{payment_id}/capture")
    void = api.post(f"/v1/payments/{payment_id}/void")

    if state == "authorized":
        assert capture.status_code == 202 and void.status_code == 409  # the capture moved it on to capturing
    else:
        assert (capture.status_code, void.status_code) == (409, 409), state
        assert capture.json()["code"] == void.json()["code"] == "payment_invalid_state"
        assert Payment.objects.get(pk=payment_id).status == state


@pytest.mark.parametrize("state", ALL_STATES)
def test_worker_side_transitions_refuse_a_wrong_source_state(api: MerchantClient, state: str):
    payment_id = api.post("/v1/payments", payment_body()).json()["id"]
    Payment.objects.filter(pk=payment_id).update(status=state)
    payment = Payment.objects.get(pk=payment_id)
    allowed = {
        "expire": "authorized",
        "request_capture": "authorized",
        "request_void": "authorized",
    }
    for step, source in allowed.items():
        if state == source:
            continue
        with pytest.raises(InvalidState):
            services._apply(payment, getattr(payment, step), **({"reason": ""} if step == "request_void" else {}))


def test_an_uncaptured_authorization_expires_and_its_hold_is_released(api: MerchantClient, acquirer: Acquirer):
    payment_id = authorized_payment(api, amount=5000)
    payment = Payment.objects.get(pk=payment_id)
    assert payment.expires_at == payment.authorized_at + timedelta(days=7)
    assert api.get(f"/v1/payments/{payment_id}").json()["expires_at"] is not None
    assert held(api) == (0, 5000)

    assert services.payments_expire_due(now=payment.expires_at - timedelta(seconds=1)) == 0
    assert Payment.objects.get(pk=payment_id).status == "authorized"

    assert services.payments_expire_due(now=payment.expires_at) == 1

    body = api.get(f"/v1/payments/{payment_id}").json()
    assert body["status"] == "expired" and body["expired_at"] and body["expires_at"] is None
    assert held(api) == (0, 0)
    release = LedgerTransaction.objects.get(reference=f"payment:{payment_id}", code="expiry_release")
    assert release.kind == "void_pending"
    assert Event.objects.filter(payment_id=payment_id, type="payment.expired").count() == 1
    # Best effort at the processor: the authorization is cancelled there too.
    drain_outbox()
    assert acquirer.authorizations_for(payment_id)[0]["state"] == "cancelled"
    # Expired is final: no capture, no void, no second expiry.
    assert api.post(f"/v1/payments/{payment_id}/capture").status_code == 409
    assert api.post(f"/v1/payments/{payment_id}/void").status_code == 409
    assert services.payments_expire_due(now=payment.expires_at + timedelta(days=1)) == 0
    assert Event.objects.filter(payment_id=payment_id, type="payment.expired").count() == 1


def test_the_authorization_lifetime_is_configurable(api: MerchantClient, settings):
    settings.PAYMENT_AUTHORIZATION_TTL = 3600
    payment = Payment.objects.get(pk=authorized_payment(api))
    assert payment.expires_at == payment.authorized_at + timedelta(hours=1)


def test_captures_voids_and_payments_in_flight_do_not_expire(api: MerchantClient):
    captured = captured_payment(api)
    capturing = authorized_payment(api)
    api.post(f"/v1/payments/{capturing}/capture")  # not drained: stays capturing
    far_future = Payment.objects.get(pk=capturing).expires_at + timedelta(days=30)

    assert services.payments_expire_due(now=far_future) == 0
    assert Payment.objects.get(pk=capturing).status == "capturing"
    assert Payment.objects.get(pk=captured).status == "captured"


def test_the_beat_task_expires_due_authorizations(api: MerchantClient):
    payment_id = authorized_payment(api)
    Payment.objects.filter(pk=payment_id).update(expires_at=Payment.objects.get(pk=payment_id).authorized_at)

    assert tasks.authorizations_expire() == 1
    assert Payment.objects.get(pk=payment_id).status == "expired"


def test_expiry_and_capture_racing_leave_one_outcome(api: MerchantClient):
    """Both lock the payment row: whichever runs second sees the other's state (capture after expiry is 409)."""
    payment_id = authorized_payment(api)
    due = Payment.objects.get(pk=payment_id).expires_at
    services.payment_expire(payment_id=payment_id, now=due)
    response = api.post(f"/v1/payments/{payment_id}/capture")
    assert response.status_code == 409
    assert not OutboxMessage.objects.filter(topic="payments.capture", key=payment_id).exists()
    assert LedgerTransaction.objects.filter(reference=f"payment:{payment_id}", pending_of__isnull=False).count() == 1


def test_the_settlement_contract_counts_voiding_and_voided_as_voided():
    """payments.contracts.SettlementPayment.voided names statuses by value; they stay the model's."""
    from payments import contracts

    assert set(contracts._VOIDED_STATUSES) == {PaymentStatus.VOIDING.value, PaymentStatus.VOIDED.value}
