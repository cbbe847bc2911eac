"""`GET /v1/events`: every transition's event, newest first, cursor paging, filtered by type or family, so a
merchant can re-fetch what its webhook endpoint missed."""

from __future__ import annotations

import pytest

from tests.conftest import MerchantClient, captured_payment, drain_outbox

pytestmark = pytest.mark.django_db(transaction=True)


def test_every_step_of_a_payment_and_its_refund_is_an_event_listed_newest_first(api: MerchantClient):
    payment_id = captured_payment(api, amount=1000)
    refund_id = api.post("/v1/refunds", {"payment": payment_id, "amount": 1000}).json()["id"]
    drain_outbox()

    events = api.get("/v1/events", limit=100).json()["data"]

    assert [e["type"] for e in events] == [
        "payment.refunded",
        "refund.succeeded",
        "refund.created",
        "payment.captured",
        "payment.authorized",
        "payment.created",
    ]
    assert [e["id"] for e in events] == sorted((e["id"] for e in events), reverse=True)
    by_type = {e["type"]: e for e in events}
    assert by_type["refund.succeeded"]["data"]["object"]["id"] == refund_id
    assert by_type["refund.succeeded"]["data"]["object"]["status"] == "succeeded"
    assert by_type["payment.refunded"]["data"]["object"]["amount_refunded"] == 1000
    assert by_type["payment.created"]["data"]["object"]["status"] == "processing"
    assert api.get(f"/v1/events/{events[0]['id']}").json() == events[0]


def test_events_page_with_cursors(api: MerchantClient):
    for _ in range(2):
        captured_payment(api, amount=100)
    all_ids = [e["id"] for e in api.get("/v1/events", limit=100).json()["data"]]
    assert len(all_ids) == 6

    page1 = api.get("/v1/events", limit=4).json()
    page2 = api.get("/v1/events", limit=4, starting_after=page1["data"][-1]["id"]).json()
    assert [e["id"] for e in page1["data"] + page2["data"]] == all_ids
    assert (page1["has_more"], page2["has_more"]) == (True, False)
    back = api.get("/v1/events", limit=2, ending_before=all_ids[4]).json()
    assert [e["id"] for e in back["data"]] == all_ids[2:4]


def test_events_filter_by_type_and_family(api: MerchantClient):
    payment_id = captured_payment(api, amount=1000)
    api.post("/v1/refunds", {"payment": payment_id, "amount": 10})
    drain_outbox()

    captured = api.get("/v1/events", type="payment.captured").json()["data"]
    assert [e["type"] for e in captured] == ["payment.captured"]
    refunds = api.get("/v1/events", type="refund.*").json()["data"]
    assert [e["type"] for e in refunds] == ["refund.succeeded", "refund.created"]
    bad = api.get("/v1/events", type="payment.exploded")
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "type"
