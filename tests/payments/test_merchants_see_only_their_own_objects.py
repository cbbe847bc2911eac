"""Tenancy: every object endpoint, walked from the OpenAPI schema, answers 404 to another merchant's ids (and to
the same merchant's ids from the other mode), changing nothing; list endpoints never show them."""

from __future__ import annotations

import re

import pytest
import yaml
from django.test import Client

from payments.models import Event, Payment, Refund
from tests.conftest import MerchantClient, captured_payment, live_client, post_json

pytestmark = pytest.mark.django_db(transaction=True)


def object_operations() -> list[tuple[str, str, str]]:
    """(method, path template, path parameter) of every documented operation on one object."""
    schema = yaml.safe_load(Client().get("/v1/schema").content)
    found = []
    for path, operations in schema["paths"].items():
        params = re.findall(r"{(\w+)}", path)
        for method in operations:
            if params:
                assert len(params) == 1, path
                found.append((method, path, params[0]))
    return found


@pytest.fixture
def victim(api: MerchantClient) -> dict[str, str]:
    """One object of each kind belonging to `api`'s merchant in test mode."""
    payment = captured_payment(api, amount=1000)
    refund = api.post("/v1/refunds", {"payment": payment, "amount": 100}).json()["id"]
    endpoint = api.post("/v1/webhook_endpoints", {"url": "https://example.com/h", "enabled_events": ["*"]}).json()["id"]
    event = Event.objects.filter(payment_id=payment).first().id
    return {"payment_id": payment, "refund_id": refund, "event_id": event, "endpoint_id": endpoint}


def snapshot() -> list:
    return [
        list(Payment.objects.order_by("id").values_list("id", "status", "amount_refunding")),
        list(Refund.objects.order_by("id").values_list("id", "status")),
    ]


def test_every_object_endpoint_answers_404_to_another_merchants_ids(
    api: MerchantClient, other_api: MerchantClient, victim: dict[str, str]
):
    operations = object_operations()
    assert {p for _, _, p in operations} <= set(victim), "a new object endpoint needs an object in `victim`"
    assert len(operations) >= 6
    before = snapshot()
    live, _ = live_client(api.merchant)  # the same merchant, other mode

    for caller in (other_api.client, live):
        for method, template, param in operations:
            path = template.replace("{" + param + "}", victim[param])
            response = caller.get(path) if method == "get" else post_json(caller, path, {})
            assert response.status_code == 404, (method, path, response.content)
            assert response.json()["code"] == "not_found"

    refund_of_other = post_json(other_api.client, "/v1/refunds", {"payment": victim["payment_id"]})
    assert refund_of_other.status_code == 404
    assert snapshot() == before


def test_lists_never_show_another_merchants_objects(api: MerchantClient, other_api: MerchantClient, victim):
    for path in ("/v1/payments", "/v1/refunds", "/v1/events", "/v1/webhook_endpoints"):
        assert other_api.get(path, limit=100).json()["data"] == [], path
    assert other_api.get("/v1/refunds", payment=victim["payment_id"]).json()["data"] == []
