"""Concurrent requests from many threads against one acquirer: money invariants hold."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable

import requests

from .conftest import Api


def _run_together(count: int, action: Callable[[int], requests.Response]) -> list[requests.Response]:
    barrier = threading.Barrier(count)
    results: list[requests.Response | None] = [None] * count

    def worker(index: int) -> None:
        barrier.wait()
        results[index] = action(index)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(result is not None for result in results)
    return results  # type: ignore[return-value]


def test_concurrent_refunds_never_exceed_the_captured_amount(api: Api) -> None:
    auth = api.authorize(amount=10000)
    api.capture(auth["psp_reference"], 10000)
    path = f"/v1/authorizations/{auth['psp_reference']}/refunds"
    responses = _run_together(20, lambda i: api.post(path, {"amount": 1000}, key=f"refund-{i}"))
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 10, 422: 10}
    assert {r.json()["error"] for r in responses if r.status_code == 422} == {"amount_exceeds_captured"}
    assert api.authorization(auth["psp_reference"])["refunded_amount"] == 10000


def test_concurrent_uneven_refunds(api: Api) -> None:
    auth = api.authorize(amount=5000)
    api.capture(auth["psp_reference"], 4999)
    path = f"/v1/authorizations/{auth['psp_reference']}/refunds"
    amounts = [700 + 37 * i for i in range(16)]
    responses = _run_together(16, lambda i: api.post(path, {"amount": amounts[i]}))
    refunded = sum(amounts[i] for i, r in enumerate(responses) if r.status_code == 201)
    assert refunded <= 4999
    assert all(r.status_code in (201, 422) for r in responses)
    assert api.authorization(auth["psp_reference"])["refunded_amount"] == refunded


def test_concurrent_captures_only_one_wins(api: Api) -> None:
    auth = api.authorize(amount=10000)
    path = f"/v1/authorizations/{auth['psp_reference']}/captures"
    responses = _run_together(10, lambda i: api.post(path, {"amount": 1000 + i}))
    winners = [r for r in responses if r.status_code == 201]
    assert len(winners) == 1
    assert Counter(r.status_code for r in responses)[409] == 9
    assert api.authorization(auth["psp_reference"])["captured_amount"] == winners[0].json()["amount"]


def test_concurrent_duplicates_create_one_authorization(api: Api) -> None:
    key = uuid.uuid4().hex
    body = {"amount": 700, "currency": "EUR", "token": "tok_visa", "reference": "dup"}
    responses = _run_together(12, lambda i: api.post("/v1/authorizations", body, key=key))
    originals = [r for r in responses if r.status_code == 201 and "Idempotent-Replayed" not in r.headers]
    assert len(originals) == 1
    for response in responses:
        assert response.status_code in (201, 409)
        if response.status_code == 201:
            assert response.content == originals[0].content


def test_many_concurrent_authorizations_get_distinct_references(api: Api) -> None:
    responses = _run_together(
        24,
        lambda i: api.post(
            "/v1/authorizations", {"amount": 100 + i, "currency": "EUR", "token": "tok_visa", "reference": f"r{i}"}
        ),
    )
    assert all(r.status_code == 201 for r in responses)
    assert len({r.json()["psp_reference"] for r in responses}) == 24
