"""Errors: every 4xx/5xx is RFC 9457 problem+json with a stable, documented `code`; unknown fields and query
parameters are refused everywhere; bodies that are not JSON get 415, bodies over the limit 413."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from config.platform.idempotency.models import IdempotencyKey
from payments.models import Payment
from tests.conftest import MerchantClient, authorized_payment, captured_payment, client_for, payment_body

pytestmark = pytest.mark.django_db(transaction=True)

BASE_DIR = Path(__file__).resolve().parents[3]


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = json.loads(response.content)
    assert (body["status"], body["code"], body["type"]) == (status, code, f"/problems/{code}")
    assert body["title"] and body["detail"]
    return body


def test_a_body_over_the_limit_is_413_before_anything_reads_it(api: MerchantClient, settings):
    assert settings.API_MAX_BODY_BYTES == 64 * 1024  # the default
    big = json.dumps(payment_body(description="x" * (64 * 1024)))
    response = api.client.post("/v1/payments", data=big, content_type="application/json", HTTP_IDEMPOTENCY_KEY="big")
    assert_problem(response, 413, "payload_too_large")
    assert not IdempotencyKey.objects.exists()

    settings.API_MAX_BODY_BYTES = 100  # configurable
    assert_problem(api.post("/v1/payments", payment_body()), 413, "payload_too_large")
    settings.API_MAX_BODY_BYTES = 64 * 1024
    assert api.post("/v1/payments", payment_body()).status_code == 202


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_bodies_that_are_not_json_are_415(api: MerchantClient, content_type: str):
    response = api.client.post("/v1/payments", data="amount=1", content_type=content_type, HTTP_IDEMPOTENCY_KEY="t")
    assert_problem(response, 415, "unsupported_media_type")


def test_an_empty_body_needs_no_content_type(api: MerchantClient):
    payment_id = authorized_payment(api)
    response = api.client.post(f"/v1/payments/{payment_id}/capture", HTTP_IDEMPOTENCY_KEY="empty")
    assert response.status_code == 202


@pytest.mark.parametrize("body", ["[1, 2]", '"text"', "42", "null"])
def test_a_body_that_is_not_a_json_object_is_400(api: MerchantClient, body: str):
    response = api.client.post("/v1/payments", data=body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="b")
    assert_problem(response, 400, "validation_error")


def test_unknown_fields_are_refused_on_every_mutating_endpoint(api: MerchantClient):
    authorized = authorized_payment(api)
    captured = captured_payment(api)
    cases = [
        ("/v1/payments", payment_body(colour="red"), "colour"),
        ("/v1/payments", payment_body(customer={"email": "a@example.com", "age": "3"}), "customer.age"),
        (f"/v1/payments/{authorized}/capture", {"amount": 10}, "amount"),
        (f"/v1/payments/{authorized}/void", {"note": "x"}, "note"),
        ("/v1/refunds", {"payment": captured, "amount_to_refund": 5}, "amount_to_refund"),
        ("/v1/webhook_endpoints", {"url": "https://example.com/h", "enabled_events": ["*"], "x": 1}, "x"),
    ]
    for path, body, field in cases:
        problem = assert_problem(api.post(path, body), 400, "validation_error")
        assert {"field": field, "code": "unknown_field", "detail": "Unknown field."} in problem["errors"], path
    assert not IdempotencyKey.objects.filter(response_status=400).exists()


@pytest.mark.parametrize(
    "path",
    [
        "/v1/payments",
        "/v1/payments/pay_x",
        "/v1/refunds",
        "/v1/refunds/re_x",
        "/v1/events",
        "/v1/events/evt_x",
        "/v1/webhook_endpoints",
        "/v1/webhook_endpoints/we_x",
    ],
)
def test_unknown_query_parameters_are_refused(api: MerchantClient, path: str):
    problem = assert_problem(api.get(path, colour="red"), 400, "validation_error")
    assert problem["errors"] == [{"field": "colour", "code": "unknown_parameter", "detail": "Unknown query parameter."}]


def test_a_query_parameter_on_a_post_is_refused(api: MerchantClient):
    response = api.post("/v1/payments?expand=customer", payment_body())
    assert_problem(response, 400, "validation_error")
    assert Payment.objects.count() == 0


def test_every_kind_of_failure_is_a_problem_document(api: MerchantClient, monkeypatch: pytest.MonkeyPatch):
    assert_problem(api.get("/v1/nothing-here"), 404, "not_found")
    assert_problem(api.client.delete("/v1/payments"), 405, "method_not_allowed")
    assert_problem(APIClient().get("/v1/payments"), 401, "authentication_required")
    assert_problem(api.get("/v1/payments/pay_nope"), 404, "not_found")

    from payments import selectors

    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(selectors, "payment_list", broken)
    failed = client_for(api.api_key, raise_request_exception=False).get("/v1/payments")
    body = assert_problem(failed, 500, "internal_error")
    assert "boom" not in failed.content.decode()
    assert body["detail"].endswith("same Idempotency-Key.")


def _codes_in_code() -> set[str]:
    codes: set[str] = set()
    for path in [
        *BASE_DIR.glob("payments/api/*.py"),
        *BASE_DIR.glob("config/platform/**/*.py"),
        BASE_DIR / "payments/errors.py",
        BASE_DIR / "webhooks/api.py",
    ]:
        text = path.read_text()
        codes |= set(re.findall(r'code="([a-z_]+)"', text)) - {"invalid", "unknown_field", "unknown_parameter", "blank"}
        codes |= set(re.findall(r'^    code = "([a-z_]+)"', text, re.MULTILINE))
    return codes - {"payments_error", "domain_error"}


def test_every_problem_code_is_documented_in_the_api_docs():
    docs = (BASE_DIR / "docs" / "api.md").read_text()
    table = set(re.findall(r"^\| `([a-z_]+)`", docs, re.MULTILINE))
    codes = _codes_in_code()
    assert {"rate_limited", "payload_too_large", "api_key_limit", "payment_invalid_state", "internal_error"} <= codes
    assert codes <= table, f"undocumented problem codes: {sorted(codes - table)}"
