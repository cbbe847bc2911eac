"""Endpoints of the sandbox acquirer over real HTTP: auth, tokens, authorizations, captures, cancels, refunds."""

from __future__ import annotations

import re
import sqlite3
import uuid
from datetime import datetime

import pytest
import requests

from .conftest import Api, SandboxServer

TEST_CARDS = {
    "4242424242424242": ("tok_visa", "visa", "424242", "4242", "US"),
    "5555555555554444": ("tok_mastercard", "mastercard", "555555", "4444", "GB"),
    "4000000000000002": ("tok_declined", "visa", "400000", "0002", "US"),
    "4000000000009995": ("tok_insufficient_funds", "visa", "400000", "9995", "US"),
    "4000000000000119": ("tok_processor_error", "visa", "400000", "0119", "US"),
    "4000000000003220": ("tok_timeout", "visa", "400000", "3220", "US"),
    "4000200000000077": ("tok_risky", "visa", "400020", "0077", "NG"),
}


def _psp(value: str) -> bool:
    return bool(re.fullmatch(r"\d{16}", value))


def test_healthz_needs_no_auth(sandbox_url: str) -> None:
    response = requests.get(sandbox_url + "/healthz", timeout=10)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic dGVzdA==", "Bearer "])
def test_requests_without_the_api_key_are_401(sandbox_url: str, header: str | None) -> None:
    headers = {"Idempotency-Key": "k1"}
    if header is not None:
        headers["Authorization"] = header
    response = requests.post(sandbox_url + "/v1/authorizations", json={}, headers=headers, timeout=10)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    get = requests.get(sandbox_url + "/v1/reports/settlement", params={"date": "2024-01-01"}, timeout=10)
    assert get.status_code == 401


def test_unknown_route_and_wrong_method(api: Api) -> None:
    assert api.get("/v1/nope").status_code == 404
    response = api.get("/v1/authorizations")
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"


@pytest.mark.parametrize(
    ("token", "result", "reason", "country"),
    [
        ("tok_visa", "authorised", None, "US"),
        ("tok_mastercard", "authorised", None, "GB"),
        ("tok_risky", "authorised", None, "NG"),
        ("tok_declined", "refused", "card_declined", "US"),
        ("tok_insufficient_funds", "refused", "insufficient_funds", "US"),
    ],
)
def test_authorization_outcome_per_token(api: Api, token: str, result: str, reason: str | None, country: str) -> None:
    body = api.authorize(token=token, amount=1234, currency="EUR")
    assert body["result"] == result
    assert body["refusal_reason"] == reason
    assert _psp(body["psp_reference"])
    assert body["amount"] == 1234
    assert body["currency"] == "EUR"
    assert body["reference"].startswith("order-")
    assert body["card"]["country"] == country
    assert set(body["card"]) == {"brand", "bin", "last4", "country", "exp_month", "exp_year", "fingerprint"}
    assert datetime.fromisoformat(body["created_at"]).utcoffset().total_seconds() == 0
    stored = api.authorization(body["psp_reference"])
    assert stored["state"] == result
    assert stored["captured_amount"] == 0
    assert stored["refunded_amount"] == 0
    assert stored["psp_reference"] == body["psp_reference"]


def test_processor_error_is_500_and_stores_nothing(api: Api, sandbox: SandboxServer) -> None:
    body = {"amount": 500, "currency": "EUR", "token": "tok_processor_error", "reference": "order-err"}
    first = api.post("/v1/authorizations", body, key="err-key")
    assert first.status_code == 500
    assert first.json()["error"] == "internal_error"
    retry = api.post("/v1/authorizations", body, key="err-key")
    assert retry.status_code == 500
    assert "Idempotent-Replayed" not in retry.headers
    # Nothing was kept for the key: it may now be used for another request.
    other = api.post("/v1/authorizations", {**body, "token": "tok_visa"}, key="err-key")
    assert other.status_code == 201
    with sqlite3.connect(sandbox.db_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM authorizations").fetchone()[0] == 1


@pytest.mark.parametrize(
    "changes",
    [
        {"amount": 0},
        {"amount": -5},
        {"amount": 10.5},
        {"amount": "100"},
        {"amount": True},
        {"amount": None},
        {"currency": "eur"},
        {"currency": "ABC"},
        {"currency": "XXX"},
        {"currency": None},
        {"reference": ""},
        {"reference": None},
    ],
)
def test_bad_authorization_requests_are_422(api: Api, changes: dict) -> None:
    body = {"amount": 1000, "currency": "EUR", "token": "tok_visa", "reference": "order-1", **changes}
    response = api.post("/v1/authorizations", body)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"


def test_unknown_token_is_invalid_token(api: Api) -> None:
    for token in ("tok_nope", "tok_" + "a" * 24):
        response = api.post("/v1/authorizations", {"amount": 1000, "currency": "EUR", "token": token, "reference": "o"})
        assert response.status_code == 422
        assert response.json()["error"] == "invalid_token"


def test_empty_merchant_account_falls_back_to_default(api: Api) -> None:
    body = api.authorize(merchant_account="")
    assert body["result"] == "authorised"


def test_invalid_json_body(api: Api) -> None:
    response = api.post("/v1/authorizations", data=b"{not json")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_json"
    response = api.post("/v1/authorizations", data=b"[1, 2]")
    assert response.status_code == 422


def test_psp_references_are_16_digits_and_unique(api: Api) -> None:
    references = set()
    for _ in range(30):
        auth = api.authorize()
        capture = api.capture(auth["psp_reference"], 100)
        references.update({auth["psp_reference"], capture["psp_reference"]})
    assert len(references) == 60
    assert all(_psp(reference) for reference in references)


# -- tokens -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("number", sorted(TEST_CARDS))
def test_mint_token_from_test_card(api: Api, number: str) -> None:
    _fixed_token, brand, bin_, last4, country = TEST_CARDS[number]
    response = api.post("/v1/tokens", {"number": number, "exp_month": 7, "exp_year": 2031, "cvc": "123"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert re.fullmatch(r"tok_[A-Za-z0-9]{24}", body["token"])
    card = body["card"]
    assert (card["brand"], card["bin"], card["last4"], card["country"]) == (brand, bin_, last4, country)
    assert (card["exp_month"], card["exp_year"]) == (7, 2031)
    assert re.fullmatch(r"[0-9a-f]{32}", card["fingerprint"])
    assert number not in response.text


def test_minted_token_behaves_like_its_test_card(api: Api) -> None:
    minted = api.post("/v1/tokens", {"number": "4000000000000002", "exp_month": 1, "exp_year": 2030}).json()
    refused = api.authorize(token=minted["token"])
    assert (refused["result"], refused["refusal_reason"]) == ("refused", "card_declined")
    assert refused["card"]["fingerprint"] == minted["card"]["fingerprint"]

    visa = api.post("/v1/tokens", {"number": "4242424242424242", "exp_month": 2, "exp_year": 2032}).json()
    approved = api.authorize(token=visa["token"])
    fixed = api.authorize(token="tok_visa")
    assert approved["result"] == "authorised"
    assert (approved["card"]["exp_month"], approved["card"]["exp_year"]) == (2, 2032)
    # The fingerprint is a stable function of the card number.
    assert approved["card"]["fingerprint"] == fixed["card"]["fingerprint"] == visa["card"]["fingerprint"]


def test_minted_processor_error_token_answers_500(api: Api) -> None:
    minted = api.post("/v1/tokens", {"number": "4000000000000119", "exp_month": 1, "exp_year": 2030}).json()
    response = api.post(
        "/v1/authorizations", {"amount": 100, "currency": "EUR", "token": minted["token"], "reference": "r"}
    )
    assert response.status_code == 500


@pytest.mark.parametrize("number", ["4242424242424241", "1234", "abcd", "42424242424242420000", ""])
def test_mint_token_invalid_number(api: Api, number: str) -> None:
    response = api.post("/v1/tokens", {"number": number, "exp_month": 12, "exp_year": 2030})
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_number"


@pytest.mark.parametrize("number", ["4111111111111111", "5105105105105100", "378282246310005"])
def test_mint_token_non_test_card(api: Api, number: str) -> None:
    response = api.post("/v1/tokens", {"number": number, "exp_month": 12, "exp_year": 2030})
    assert response.status_code == 422
    assert response.json()["error"] == "not_a_test_card"


@pytest.mark.parametrize(
    "changes", [{"exp_month": 13}, {"exp_month": "12"}, {"exp_year": 30}, {"cvc": "12a"}, {"number": 4242424242424242}]
)
def test_mint_token_bad_fields(api: Api, changes: dict) -> None:
    body = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, **changes}
    response = api.post("/v1/tokens", body)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"


def test_card_numbers_are_never_stored(api: Api, sandbox: SandboxServer) -> None:
    numbers = ["4242424242424242", "5555555555554444", "4111111111111111", "4242424242424241"]
    for number in numbers:
        api.post("/v1/tokens", {"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "987"})
    files = [p for p in sandbox.db_path.parent.iterdir() if p.name.startswith(sandbox.db_path.name)]
    assert files
    blob = b"".join(p.read_bytes() for p in files)
    for number in numbers:
        assert number.encode() not in blob


# -- captures, cancels, refunds -----------------------------------------------------------------------


def test_full_capture(api: Api) -> None:
    auth = api.authorize(amount=10000)
    capture = api.capture(auth["psp_reference"], 10000)
    assert capture["status"] == "captured"
    assert capture["original_reference"] == auth["psp_reference"]
    assert capture["psp_reference"] != auth["psp_reference"] and _psp(capture["psp_reference"])
    assert (capture["amount"], capture["currency"]) == (10000, "EUR")
    stored = api.authorization(auth["psp_reference"])
    assert (stored["state"], stored["captured_amount"]) == ("captured", 10000)


def test_partial_capture_then_second_capture_is_409(api: Api) -> None:
    auth = api.authorize(amount=10000)
    api.capture(auth["psp_reference"], 4000)
    assert api.authorization(auth["psp_reference"])["captured_amount"] == 4000
    second = api.post(f"/v1/authorizations/{auth['psp_reference']}/captures", {"amount": 1000})
    assert second.status_code == 409
    assert second.json()["error"] == "invalid_state"


def test_capture_errors(api: Api) -> None:
    auth = api.authorize(amount=10000)
    path = f"/v1/authorizations/{auth['psp_reference']}/captures"
    over = api.post(path, {"amount": 10001})
    assert over.status_code == 422
    assert over.json()["error"] == "amount_exceeds_authorized"
    assert api.post(path, {"amount": 0}).json()["error"] == "invalid_request"
    assert api.post(path, {}).json()["error"] == "invalid_request"
    assert api.authorization(auth["psp_reference"])["state"] == "authorised"
    missing = api.post("/v1/authorizations/0000000000000000/captures", {"amount": 1})
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"
    refused = api.authorize(token="tok_declined")
    response = api.post(f"/v1/authorizations/{refused['psp_reference']}/captures", {"amount": 1})
    assert response.status_code == 409
    assert api.get("/v1/authorizations/0000000000000000").status_code == 404


def test_cancel(api: Api) -> None:
    auth = api.authorize(amount=10000)
    path = f"/v1/authorizations/{auth['psp_reference']}"
    cancel = api.post(path + "/cancels", {})
    assert cancel.status_code == 201
    body = cancel.json()
    assert body["status"] == "cancelled"
    assert body["original_reference"] == auth["psp_reference"]
    assert _psp(body["psp_reference"])
    assert "created_at" in body
    assert api.authorization(auth["psp_reference"])["state"] == "cancelled"
    assert api.post(path + "/captures", {"amount": 100}).status_code == 409
    again = api.post(path + "/cancels", {})
    assert again.status_code == 409
    assert again.json()["error"] == "invalid_state"


def test_cancel_after_capture_is_409(api: Api) -> None:
    auth = api.authorize()
    api.capture(auth["psp_reference"], 10000)
    response = api.post(f"/v1/authorizations/{auth['psp_reference']}/cancels", {})
    assert response.status_code == 409


def test_cancel_accepts_an_empty_body(api: Api) -> None:
    auth = api.authorize()
    response = api.post(f"/v1/authorizations/{auth['psp_reference']}/cancels", data=b"")
    assert response.status_code == 201


def test_refunds(api: Api) -> None:
    auth = api.authorize(amount=10000)
    path = f"/v1/authorizations/{auth['psp_reference']}/refunds"
    before = api.post(path, {"amount": 100})
    assert before.status_code == 409
    assert before.json()["error"] == "invalid_state"
    api.capture(auth["psp_reference"], 8000)
    first = api.refund(auth["psp_reference"], 3000)
    assert first["status"] == "refunded"
    assert (first["amount"], first["currency"], first["original_reference"]) == (3000, "EUR", auth["psp_reference"])
    api.refund(auth["psp_reference"], 4000)
    over = api.post(path, {"amount": 1001})
    assert over.status_code == 422
    assert over.json()["error"] == "amount_exceeds_captured"
    api.refund(auth["psp_reference"], 1000)
    stored = api.authorization(auth["psp_reference"])
    assert (stored["state"], stored["captured_amount"], stored["refunded_amount"]) == ("captured", 8000, 8000)
    assert api.post(path, {"amount": 1}).status_code == 422
    assert api.post("/v1/authorizations/1111111111111111/refunds", {"amount": 1}).status_code == 404


def test_refund_in_another_currency_is_rejected(api: Api) -> None:
    auth = api.authorize(amount=10000)
    api.capture(auth["psp_reference"], 10000)
    response = api.post(f"/v1/authorizations/{auth['psp_reference']}/refunds", {"amount": 10, "currency": "USD"})
    assert response.status_code == 422


def test_idempotency_key_is_required(api: Api) -> None:
    body = {"amount": 100, "currency": "EUR", "token": "tok_visa", "reference": "r"}
    for key in (None, "x" * 256):
        response = api.post("/v1/authorizations", body, key=key)
        assert response.status_code == 400
        assert response.json()["error"] == "idempotency_key_missing"
    assert api.post("/v1/authorizations", body, key="x" * 255).status_code == 201
    assert api.post("/v1/authorizations", body, key=uuid.uuid4().hex).status_code == 201
