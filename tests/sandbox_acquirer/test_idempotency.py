"""Idempotency over real HTTP: replay, body mismatch, in-flight conflicts, 5xx, and the slow tok_timeout."""

from __future__ import annotations

import json
import sqlite3
import threading
import time

import pytest
import requests

from .conftest import Api, SandboxServer

AUTH = {"amount": 2500, "currency": "EUR", "token": "tok_visa", "reference": "order-42"}


def test_replay_is_byte_identical_with_header(api: Api) -> None:
    first = api.post("/v1/authorizations", AUTH, key="replay-1")
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    second = api.post("/v1/authorizations", AUTH, key="replay-1")
    assert second.status_code == 201
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.content == first.content
    # Key order and whitespace do not matter: the canonical JSON is compared.
    reordered = json.dumps(dict(reversed(list(AUTH.items()))), indent=2).encode()
    third = api.post("/v1/authorizations", data=reordered, key="replay-1")
    assert third.content == first.content
    assert third.headers["Idempotent-Replayed"] == "true"


def test_refusals_and_4xx_are_replayed_too(api: Api) -> None:
    refused = {**AUTH, "token": "tok_declined"}
    first = api.post("/v1/authorizations", refused, key="refused-1")
    assert first.json()["result"] == "refused"
    again = api.post("/v1/authorizations", refused, key="refused-1")
    assert (again.content, again.headers["Idempotent-Replayed"]) == (first.content, "true")

    auth = api.authorize()
    path = f"/v1/authorizations/{auth['psp_reference']}/refunds"
    conflict = api.post(path, {"amount": 100}, key="refund-early")
    assert conflict.status_code == 409
    api.capture(auth["psp_reference"], auth["amount"])
    replay = api.post(path, {"amount": 100}, key="refund-early")
    assert replay.status_code == 409
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.content == conflict.content


def test_modifications_are_not_repeated_on_replay(api: Api) -> None:
    auth = api.authorize(amount=10000)
    api.capture(auth["psp_reference"], 10000)
    path = f"/v1/authorizations/{auth['psp_reference']}/refunds"
    first = api.post(path, {"amount": 3000}, key="refund-once")
    second = api.post(path, {"amount": 3000}, key="refund-once")
    assert second.content == first.content
    assert api.authorization(auth["psp_reference"])["refunded_amount"] == 3000


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/authorizations", {**AUTH, "amount": 2501}),
        ("/v1/authorizations", {**AUTH, "reference": "order-43"}),
        ("/v1/tokens", {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030}),
    ],
)
def test_same_key_with_another_request_is_422(api: Api, path: str, body: dict) -> None:
    assert api.post("/v1/authorizations", AUTH, key="reuse-1").status_code == 201
    response = api.post(path, body, key="reuse-1")
    assert response.status_code == 422
    assert response.json()["error"] == "idempotency_key_reused"


def test_tokens_differing_only_in_card_number_are_different_requests(api: Api) -> None:
    body = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030}
    assert api.post("/v1/tokens", body, key="tok-1").status_code == 201
    response = api.post("/v1/tokens", {**body, "number": "5555555555554444"}, key="tok-1")
    assert response.status_code == 422
    assert response.json()["error"] == "idempotency_key_reused"


def _retry_until_not_in_flight(api: Api, body: dict, key: str, read_timeout: float) -> requests.Response:
    """Retry while the first request still holds the key (409), as a client would."""
    deadline = time.monotonic() + 30
    while True:
        response = api.post("/v1/authorizations", body, key=key, timeout=read_timeout)
        if response.status_code != 409 or time.monotonic() > deadline:
            return response
        assert response.json()["error"] == "idempotency_key_in_use"
        time.sleep(0.05)


def test_timeout_token_is_slow_then_answered_from_the_stored_result(api: Api, sandbox: SandboxServer) -> None:
    body = {**AUTH, "token": "tok_timeout"}
    short = sandbox.slow_seconds / 3
    with pytest.raises(requests.exceptions.ReadTimeout):
        api.post("/v1/authorizations", body, key="slow-1", timeout=short)
    # The retry is answered from the result the first request stored; it does not sleep again, so a
    # read timeout shorter than the sleep is enough.
    retry = _retry_until_not_in_flight(api, body, "slow-1", read_timeout=short)
    assert retry.status_code == 201
    assert retry.headers["Idempotent-Replayed"] == "true"
    again = api.post("/v1/authorizations", body, key="slow-1", timeout=short)
    assert again.json()["psp_reference"] == retry.json()["psp_reference"]
    assert again.content == retry.content
    stored = api.authorization(retry.json()["psp_reference"])
    assert (stored["result"], stored["state"]) == ("authorised", "authorised")


def test_concurrent_duplicate_is_409_in_use(api: Api) -> None:
    body = {**AUTH, "token": "tok_timeout"}
    barrier = threading.Barrier(4)
    responses: list[requests.Response] = []
    lock = threading.Lock()

    def send() -> None:
        barrier.wait()
        response = api.post("/v1/authorizations", body, key="dup-slow")
        with lock:
            responses.append(response)

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    originals = [r for r in responses if r.status_code == 201 and "Idempotent-Replayed" not in r.headers]
    in_use = [r for r in responses if r.status_code == 409]
    assert len(originals) == 1
    assert in_use
    assert all(r.json()["error"] == "idempotency_key_in_use" for r in in_use)
    for response in responses:
        if response.status_code == 201:
            assert response.content == originals[0].content


def _key_state(sandbox: SandboxServer, key: str) -> str | None:
    conn = sqlite3.connect(sandbox.db_path, timeout=10)
    try:
        row = conn.execute("SELECT state FROM idempotency_keys WHERE key = ?", (key,)).fetchone()
    finally:
        conn.close()
    return row[0] if row else None


def test_slow_request_holds_no_database_lock(api: Api, sandbox: SandboxServer) -> None:
    body = {**AUTH, "token": "tok_timeout"}
    slow = threading.Thread(target=api.post, args=("/v1/authorizations", body), kwargs={"key": "slow-lock"})
    slow.start()
    try:
        # Wait until the slow request holds its key in flight, i.e. it is sleeping.
        deadline = time.monotonic() + 10
        while _key_state(sandbox, "slow-lock") != "in_flight":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        # Writes still go through while it sleeps, faster than its sleep.
        short = sandbox.slow_seconds / 2
        response = api.post("/v1/authorizations", AUTH, timeout=short)
        assert response.status_code == 201
        capture = api.post(
            f"/v1/authorizations/{response.json()['psp_reference']}/captures", {"amount": 1}, timeout=short
        )
        assert capture.status_code == 201
        assert _key_state(sandbox, "slow-lock") == "in_flight"
    finally:
        slow.join()
    assert _key_state(sandbox, "slow-lock") == "done"
