"""`Prefer: wait=N` (RFC 7240): the answer waits for the worker's final state, up to N ≤ 10 seconds, woken through
a Redis channel while holding no database connection; the request thread never calls the processor."""

from __future__ import annotations

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection
from rest_framework.test import APIRequestFactory

from config.platform.http import waiting
from config.platform.http.prefer import prefer_wait
from tests.conftest import (
    Acquirer,
    MerchantClient,
    authorized_payment,
    captured_payment,
    client_for,
    close_connection_after,
    drain_outbox,
    payment_body,
    post_json,
    wait_until,
)

pytestmark = pytest.mark.django_db(transaction=True)


def subscribers(object_id: str) -> int:
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    return dict(client.pubsub_numsub(waiting.channel(object_id))).get(waiting.channel(object_id).encode(), 0)


def database_connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        return cursor.fetchone()[0]


def start_waiting(api: MerchantClient, path: str, body: dict, seconds: int = 10):
    import threading

    result: dict = {}

    @close_connection_after
    def target() -> None:
        result["response"] = post_json(client_for(api.api_key), path, body, HTTP_PREFER=f"wait={seconds}")

    thread = threading.Thread(target=target)
    thread.start()
    return thread, result


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("wait=5", 5.0),
        ("respond-async, wait=3", 3.0),
        ('wait="7"', 7.0),
        ("wait=30", 10.0),  # capped at API_PREFER_WAIT_MAX
        ("wait=-1", 0.0),
        ("wait=soon", 0.0),
        ("handling=strict", 0.0),
        ("", 0.0),
    ],
)
def test_prefer_wait_is_parsed_per_rfc_7240_and_capped(header: str, seconds: float):
    request = APIRequestFactory().post("/v1/payments", HTTP_PREFER=header)
    from rest_framework.request import Request

    assert prefer_wait(Request(request)) == seconds


def test_a_waiting_create_returns_201_with_the_final_payment_once_the_worker_finished(
    api: MerchantClient, acquirer: Acquirer
):
    before = database_connections()
    thread, result = start_waiting(api, "/v1/payments", payment_body(), seconds=10)

    from payments.models import Payment

    wait_until(lambda: Payment.objects.exists(), what="the payment to be accepted")
    payment_id = Payment.objects.get().id
    wait_until(lambda: subscribers(payment_id) == 1, what="the request to wait on the payment's channel")
    # While it waits, the request holds no database connection, and nobody has called the processor.
    assert database_connections() == before
    assert acquirer.authorizations_for(payment_id) == []
    assert thread.is_alive()

    drain_outbox()  # the worker authorizes and captures
    thread.join(30)

    response = result["response"]
    assert response.status_code == 201
    body = response.json()
    assert (body["id"], body["status"], body["amount_captured"]) == (payment_id, "captured", 2599)


def test_a_wait_that_runs_out_answers_202_processing(api: MerchantClient):
    response = api.post("/v1/payments", payment_body(), HTTP_PREFER="wait=1")
    assert response.status_code == 202 and response.json()["status"] == "processing"


def test_without_prefer_the_answer_is_immediate(api: MerchantClient):
    response = api.post("/v1/payments", payment_body())
    assert response.status_code == 202 and response.json()["status"] == "processing"


def test_a_waiting_capture_answers_200_with_the_captured_payment(api: MerchantClient):
    payment_id = authorized_payment(api)
    thread, result = start_waiting(api, f"/v1/payments/{payment_id}/capture", {"amount_to_capture": 1000})
    wait_until(lambda: subscribers(payment_id) == 1, what="the capture to wait")
    drain_outbox()
    thread.join(30)
    assert result["response"].status_code == 200
    assert (result["response"].json()["status"], result["response"].json()["amount_captured"]) == ("captured", 1000)


def test_a_waiting_void_answers_200_with_the_voided_payment(api: MerchantClient):
    payment_id = authorized_payment(api)
    thread, result = start_waiting(api, f"/v1/payments/{payment_id}/void", {})
    wait_until(lambda: subscribers(payment_id) == 1, what="the void to wait")
    drain_outbox()
    thread.join(30)
    assert result["response"].status_code == 200 and result["response"].json()["status"] == "voided"


def test_a_waiting_refund_answers_201_with_the_succeeded_refund(api: MerchantClient):
    from payments.models import Refund

    payment_id = captured_payment(api, amount=1000)
    thread, result = start_waiting(api, "/v1/refunds", {"payment": payment_id, "amount": 400})
    wait_until(lambda: Refund.objects.exists(), what="the refund to be accepted")
    refund_id = Refund.objects.get().id
    wait_until(lambda: subscribers(refund_id) == 1, what="the refund to wait")
    drain_outbox()
    thread.join(30)
    assert result["response"].status_code == 201
    assert (result["response"].json()["id"], result["response"].json()["status"]) == (refund_id, "succeeded")


def test_the_waited_answer_is_what_replays_return(api: MerchantClient):
    payment_id = authorized_payment(api)
    thread, result = start_waiting(api, f"/v1/payments/{payment_id}/void", {})
    wait_until(lambda: subscribers(payment_id) == 1, what="the void to wait")
    drain_outbox()
    thread.join(30)
    key = result["response"].wsgi_request.META["HTTP_IDEMPOTENCY_KEY"]
    replay = api.post(f"/v1/payments/{payment_id}/void", {}, key=key)
    assert replay.status_code == 200 and replay.content == result["response"].content


def test_without_redis_a_wait_answers_at_once(api: MerchantClient, redis_down: None):
    response = api.post("/v1/payments", payment_body(), HTTP_PREFER="wait=10")
    assert response.status_code == 202 and response.json()["status"] == "processing"
