"""Refunds: partial and several, never above the capture even in parallel, asynchronous through the processor
(the real sandbox acquirer over HTTP), with their events, ledger postings and the payment's refunded amounts."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections import Counter

import pytest
import requests
from django.db import IntegrityError, transaction
from rest_framework.renderers import JSONRenderer

from config.platform.outbox.models import OutboxMessage
from ledger.contracts import AccountPurpose, AccountRef
from ledger.models import LedgerTransaction
from ledger.selectors import balance_get
from payments import events
from payments.api import refunds as refunds_api
from payments.ledger_refs import merchant_owner, platform_owner
from payments.models import Event, Payment, Refund
from payments.representations import refund_to_dict
from tests.conftest import (
    ACQUIRER_KEY,
    Acquirer,
    MerchantClient,
    authorized_payment,
    captured_payment,
    client_for,
    close_connection_after,
    drain_outbox,
    payment_body,
    post_json,
)

pytestmark = pytest.mark.django_db(transaction=True)


def balances(api: MerchantClient, currency: str = "EUR") -> tuple[int, int]:
    """(merchant pending posted, processor receivable posted) in minor units."""
    merchant = balance_get(
        ref=AccountRef(
            owner=merchant_owner(merchant_id=api.merchant.pk, mode="test"),
            purpose=AccountPurpose.MERCHANT_PENDING,
            currency=currency,
        )
    )
    receivable = balance_get(
        ref=AccountRef(
            owner=platform_owner(mode="test"), purpose=AccountPurpose.PROCESSOR_RECEIVABLE, currency=currency
        )
    )
    return merchant.posted, receivable.posted


def event_types(payment_id: str) -> list[str]:
    return list(Event.objects.filter(payment_id=payment_id).order_by("id").values_list("type", flat=True))


def test_a_requested_refund_is_rendered_once_and_its_event_snapshot_is_the_answer(api: MerchantClient, monkeypatch):
    """The refund request renders the refund once: the answer's body is the `refund.created` snapshot
    (`data.object`), and byte for byte the API form of the stored refund."""
    payment_id = captured_payment(api, amount=10000)
    rendered: list[str] = []

    def counting(refund: Refund) -> dict:
        rendered.append(refund.pk)
        return refund_to_dict(refund)

    monkeypatch.setattr(events, "refund_to_dict", counting)
    monkeypatch.setattr(refunds_api, "REFUND", dataclasses.replace(refunds_api.REFUND, render=counting))
    response = api.post("/v1/refunds", {"payment": payment_id, "amount": 2500, "reason": "duplicate"})

    assert response.status_code == 202
    refund = Refund.objects.get(pk=response.json()["id"])
    assert rendered == [refund.pk]
    assert response.content == JSONRenderer().render(refund_to_dict(refund))
    assert Event.objects.get(payment_id=payment_id, type="refund.created").data["object"] == response.json()


def test_a_full_refund_runs_through_the_processor_and_posts_to_the_ledger(api: MerchantClient, acquirer: Acquirer):
    payment_id = captured_payment(api, amount=10000)

    response = api.post("/v1/refunds", {"payment": payment_id, "reason": "requested_by_customer"})
    assert response.status_code == 202
    refund = response.json()
    assert (refund["object"], refund["status"], refund["amount"], refund["currency"]) == (
        "refund",
        "pending",
        10000,
        "EUR",
    )
    assert refund["id"].startswith("re_") and refund["payment"] == payment_id
    payment = api.get(f"/v1/payments/{payment_id}").json()
    assert (payment["status"], payment["amount_refunded"], payment["amount_refundable"]) == ("captured", 0, 0)

    drain_outbox()

    refund = api.get(f"/v1/refunds/{refund['id']}").json()
    assert refund["status"] == "succeeded" and refund["psp_reference"] and refund["succeeded_at"]
    payment = api.get(f"/v1/payments/{payment_id}").json()
    assert (payment["status"], payment["amount_refunded"], payment["amount_refundable"]) == ("refunded", 10000, 0)
    assert event_types(payment_id)[-3:] == ["refund.created", "refund.succeeded", "payment.refunded"]
    refund_txn = LedgerTransaction.objects.get(reference=f"payment:{payment_id}", code="refund")
    assert refund_txn.kind == "posted"
    assert balances(api) == (0, 0)  # captured 10000 then refunded 10000: the merchant is owed nothing
    authorization = acquirer.authorizations_for(payment_id)[0]
    assert authorization["refunded_amount"] == 10000


def test_partial_refunds_add_up_and_the_status_follows(api: MerchantClient):
    payment_id = captured_payment(api, amount=10000)

    first = api.post("/v1/refunds", {"payment": payment_id, "amount": 3000}).json()
    drain_outbox()
    payment = api.get(f"/v1/payments/{payment_id}").json()
    assert (payment["status"], payment["amount_refunded"], payment["amount_refundable"]) == (
        "partially_refunded",
        3000,
        7000,
    )
    assert balances(api) == (7000, 7000)

    second = api.post("/v1/refunds", {"payment": payment_id, "amount": 7000}).json()
    drain_outbox()
    payment = api.get(f"/v1/payments/{payment_id}").json()
    assert (payment["status"], payment["amount_refunded"]) == ("refunded", 10000)
    assert [e for e in event_types(payment_id) if e.startswith("payment.") and "refund" in e] == [
        "payment.partially_refunded",
        "payment.refunded",
    ]
    listed = api.get("/v1/refunds", payment=payment_id).json()["data"]
    assert [r["id"] for r in listed] == [second["id"], first["id"]]

    third = api.post("/v1/refunds", {"payment": payment_id, "amount": 1})
    assert third.status_code == 409 and third.json()["code"] == "payment_invalid_state"


def test_a_refund_above_what_is_refundable_is_refused_and_reserves_nothing(api: MerchantClient):
    payment_id = captured_payment(api, amount=10000)
    api.post("/v1/refunds", {"payment": payment_id, "amount": 6000})  # pending: reserves 6000

    response = api.post("/v1/refunds", {"payment": payment_id, "amount": 4001})

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "amount_invalid" and body["param"] == "amount"
    assert Refund.objects.count() == 1
    payment = Payment.objects.get(pk=payment_id)
    assert (payment.amount_refunding, payment.amount_refunded) == (6000, 0)
    assert api.post("/v1/refunds", {"payment": payment_id, "amount": 4000}).status_code == 202


@pytest.mark.parametrize("state", ["processing", "authorized", "voided", "failed"])
def test_only_captured_payments_can_be_refunded(api: MerchantClient, state: str):
    if state == "processing":
        payment_id = api.post("/v1/payments", payment_body()).json()["id"]
    elif state == "authorized":
        payment_id = authorized_payment(api)
    elif state == "voided":
        payment_id = authorized_payment(api)
        api.post(f"/v1/payments/{payment_id}/void")
        drain_outbox()
    else:
        payment_id = api.post("/v1/payments", payment_body(payment_method="tok_declined")).json()["id"]
        drain_outbox()
    assert Payment.objects.get(pk=payment_id).status == state

    response = api.post("/v1/refunds", {"payment": payment_id})

    assert response.status_code == 409 and response.json()["code"] == "payment_invalid_state"
    assert response.json()["payment_status"] == state
    assert not Refund.objects.exists()


def test_two_parallel_refunds_of_60_on_a_100_capture_exactly_one_succeeds(api: MerchantClient):
    payment_id = captured_payment(api, amount=100)
    barrier = threading.Barrier(2)
    results: list[tuple[int, dict]] = []
    lock = threading.Lock()

    @close_connection_after
    def refund(n: int) -> None:
        client = client_for(api.api_key)
        barrier.wait()
        r = post_json(client, "/v1/refunds", {"payment": payment_id, "amount": 60}, key=f"refund-{n}")
        with lock:
            results.append((r.status_code, r.json()))

    threads = [threading.Thread(target=refund, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(status for status, _ in results) == [202, 400]
    assert next(body for status, body in results if status == 400)["code"] == "amount_invalid"
    drain_outbox()
    payment = Payment.objects.get(pk=payment_id)
    assert (payment.status, payment.amount_refunded, payment.amount_refunding) == ("partially_refunded", 60, 0)
    assert list(Refund.objects.values_list("status", "amount")) == [("succeeded", 60)]
    assert balances(api) == (40, 40)


def test_many_parallel_refunds_never_exceed_the_capture(api: MerchantClient):
    payment_id = captured_payment(api, amount=100)
    barrier = threading.Barrier(8)
    statuses: list[int] = []
    lock = threading.Lock()

    @close_connection_after
    def refund(n: int) -> None:
        client = client_for(api.api_key)
        barrier.wait()
        r = post_json(client, "/v1/refunds", {"payment": payment_id, "amount": 30}, key=f"many-{n}")
        with lock:
            statuses.append(r.status_code)

    threads = [threading.Thread(target=refund, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert Counter(statuses) == {202: 3, 400: 5}
    drain_outbox()
    payment = Payment.objects.get(pk=payment_id)
    assert (payment.amount_refunded, payment.status) == (90, "partially_refunded")


def test_the_database_refuses_refunds_above_the_capture_even_past_the_service(api: MerchantClient):
    payment_id = captured_payment(api, amount=100)
    with pytest.raises(IntegrityError), transaction.atomic():
        Payment.objects.filter(pk=payment_id).update(amount_refunding=101)
    with pytest.raises(IntegrityError), transaction.atomic():
        Payment.objects.filter(pk=payment_id).update(amount_refunded=50, amount_refunding=51)


def test_a_refund_the_processor_refuses_fails_and_releases_its_reservation(api: MerchantClient, acquirer: Acquirer):
    payment_id = captured_payment(api, amount=5000)
    psp = Payment.objects.get(pk=payment_id).psp_reference
    # Someone refunds 3000 directly at the processor, behind our back: it now has only 2000 refundable.
    outside = requests.post(
        f"{acquirer.url}/v1/authorizations/{psp}/refunds",
        json={"amount": 3000},
        headers={"Authorization": f"Bearer {ACQUIRER_KEY}", "Idempotency-Key": f"outside-{payment_id}"},
        timeout=5,
    )
    assert outside.status_code == 201

    refund_id = api.post("/v1/refunds", {"payment": payment_id, "amount": 4000}).json()["id"]
    drain_outbox()

    refund = api.get(f"/v1/refunds/{refund_id}").json()
    assert (refund["status"], refund["failure_code"]) == ("failed", "amount_exceeds_captured")
    payment = Payment.objects.get(pk=payment_id)
    assert (payment.status, payment.amount_refunded, payment.amount_refunding) == ("captured", 0, 0)
    assert event_types(payment_id)[-2:] == ["refund.created", "refund.failed"]
    assert not LedgerTransaction.objects.filter(reference=f"payment:{payment_id}", code="refund").exists()
    assert balances(api) == (5000, 5000)


def test_an_unreachable_processor_is_retried_then_the_refund_fails(api: MerchantClient, settings):
    from payments.processors import get_processor
    from tests.conftest import processor_settings

    payment_id = captured_payment(api, amount=5000)
    settings.PROCESSORS = processor_settings("http://127.0.0.1:9")
    settings.OUTBOX_MAX_ATTEMPTS = 3
    get_processor.cache_clear()

    refund_id = api.post("/v1/refunds", {"payment": payment_id}).json()["id"]
    drain_outbox()

    refund = Refund.objects.get(pk=refund_id)
    assert (refund.status, refund.failure_code) == ("failed", "processor_unreachable")
    row = OutboxMessage.objects.get(topic="payments.refund", subscriber="payments.processor")
    assert row.attempts == 3
    assert Payment.objects.get(pk=payment_id).amount_refunding == 0


def test_refunds_are_listed_newest_first_and_scoped(api: MerchantClient, other_api: MerchantClient):
    a = captured_payment(api, amount=1000)
    b = captured_payment(api, amount=1000)
    ids = [api.post("/v1/refunds", {"payment": p, "amount": 100}).json()["id"] for p in (a, b, a)]
    other = captured_payment(other_api, amount=1000)
    other_api.post("/v1/refunds", {"payment": other})

    page = api.get("/v1/refunds", limit=2).json()
    assert [r["id"] for r in page["data"]] == [ids[2], ids[1]] and page["has_more"] is True
    rest = api.get("/v1/refunds", limit=2, starting_after=ids[1]).json()
    assert [r["id"] for r in rest["data"]] == [ids[0]] and rest["has_more"] is False
    assert [r["id"] for r in api.get("/v1/refunds", payment=a).json()["data"]] == [ids[2], ids[0]]
    assert api.get("/v1/refunds", payment="").status_code == 400


def test_refund_replays_are_byte_identical(api: MerchantClient):
    payment_id = captured_payment(api, amount=1000)
    first = api.post("/v1/refunds", {"payment": payment_id, "amount": 100}, key="refund-key")
    again = api.post("/v1/refunds", {"payment": payment_id, "amount": 100}, key="refund-key")
    other = api.post("/v1/refunds", {"payment": payment_id, "amount": 200}, key="refund-key")
    assert again.content == first.content and again["Idempotent-Replayed"] == "true"
    assert other.status_code == 422 and json.loads(other.content)["code"] == "idempotency_key_reused"
    assert Refund.objects.count() == 1
