"""The OpenAPI schema (drf-spectacular) at /v1/schema with Swagger UI and ReDoc on local assets at /v1/docs, every
endpoint, field, error and header described; and schemathesis, in process, sending a few hundred generated and
authenticated requests to every operation: no 5xx, and every response conforms to the schema."""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from typing import Any

import pytest
import schemathesis
import yaml
from django.core.wsgi import get_wsgi_application
from django.test import Client
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import authorized_payment, captured_payment, make_merchant_client

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES_PER_OPERATION = 30
MIN_REQUESTS = 300


def load_schema() -> dict[str, Any]:
    response = Client().get("/v1/schema", {"format": "json"})
    assert response.status_code == 200
    return json.loads(response.content)


def test_the_schema_is_served_as_yaml_and_json_and_lists_every_endpoint():
    as_yaml = yaml.safe_load(Client().get("/v1/schema").content)
    as_json = load_schema()
    assert as_yaml == as_json
    assert as_json["openapi"].startswith("3.")
    assert set(as_json["paths"]) >= {
        "/v1/payments",
        "/v1/payments/{payment_id}",
        "/v1/payments/{payment_id}/capture",
        "/v1/payments/{payment_id}/void",
        "/v1/refunds",
        "/v1/refunds/{refund_id}",
        "/v1/events",
        "/v1/events/{event_id}",
        "/v1/webhook_endpoints",
        "/v1/webhook_endpoints/{endpoint_id}",
    }


def test_every_operation_is_described_with_its_errors_headers_and_examples():
    schema = load_schema()
    for path, operations in schema["paths"].items():
        for method, op in operations.items():
            where = f"{method.upper()} {path}"
            assert op.get("summary") and op.get("description"), where
            assert op.get("security") == [{"ApiKey": []}], where
            statuses = set(op["responses"])
            assert {"400", "401", "429"} <= statuses, where
            for status, response in op["responses"].items():
                assert response.get("description"), f"{where} {status}"
                assert {"Request-Id", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} <= set(
                    response.get("headers", {})
                ), f"{where} {status}"
                if status.startswith(("4", "5")):
                    assert list(response["content"]) == ["application/problem+json"], f"{where} {status}"
            for status in ("409", "429"):
                if status in op["responses"]:
                    assert "Retry-After" in op["responses"][status]["headers"], f"{where} {status}"
            params = {p["name"]: p for p in op.get("parameters", []) if p["in"] == "header"}
            if method == "post":
                assert params["Idempotency-Key"]["required"] is True, where
                assert params["Idempotency-Key"]["schema"]["maxLength"] == 255
                assert {"409", "413", "415", "422"} <= statuses, where
                assert all("Idempotent-Replayed" in r["headers"] for r in op["responses"].values()), where
                assert op["requestBody"]["content"]["application/json"].get("examples"), where
                success = [s for s in op["responses"] if s.startswith("2")]
                assert any(op["responses"][s]["content"]["application/json"].get("examples") for s in success), where
    waitable = {"/v1/payments", "/v1/payments/{payment_id}/capture", "/v1/payments/{payment_id}/void", "/v1/refunds"}
    for path in waitable:
        prefer = [p for p in schema["paths"][path]["post"]["parameters"] if p["name"] == "Prefer"]
        assert prefer and "wait=N" in prefer[0]["description"], path
        assert {"202", "200" if "{" in path else "201"} <= set(schema["paths"][path]["post"]["responses"])


def test_every_field_of_every_object_is_described():
    components = load_schema()["components"]["schemas"]
    undescribed = []
    for name, component in components.items():
        for field, prop in component.get("properties", {}).items():
            if field == "object" or "$ref" in prop or "allOf" in prop or "oneOf" in prop:
                continue  # `object` names the type; references are described by their component
            if not prop.get("description"):
                undescribed.append(f"{name}.{field}")
    assert undescribed == [], undescribed


def test_request_and_response_objects_are_closed_so_undocumented_fields_fail():
    components = load_schema()["components"]["schemas"]
    for name in ("Payment", "Refund", "Event", "PaymentCreateRequest", "RefundCreateRequest", "PaymentList"):
        assert components[name]["additionalProperties"] is False, name


def test_swagger_ui_and_redoc_are_served_from_local_assets():
    for path in ("/v1/docs", "/v1/docs/redoc"):
        page = Client().get(path)
        assert page.status_code == 200 and page["Content-Type"].startswith("text/html")
        html = page.content.decode()
        assert not re.search(r"https?://(cdn|unpkg|fastly|cdnjs)", html), path
        assets = re.findall(r'(?:src|href)="(/static/drf_spectacular_sidecar/[^"]+)"', html)
        assert assets, path
        for asset in assets:
            assert Client().get(asset).status_code == 200, asset


# --- schemathesis ------------------------------------------------------------------------------------------------


@pytest.fixture
def merchant_objects(transactional_db: None, settings: Any) -> dict[str, str]:
    """A merchant with real objects of every kind, so generated requests also reach existing ones."""
    settings.API_PREFER_WAIT_MAX = 0.05  # nothing drains the outbox here: do not wait for it
    api = make_merchant_client("Fuzzed Merchant")
    captured = captured_payment(api, amount=100_000)
    authorized = authorized_payment(api)
    refund = api.post("/v1/refunds", {"payment": captured, "amount": 1}).json()["id"]
    endpoint = api.post("/v1/webhook_endpoints", {"url": "https://example.com/h", "enabled_events": ["*"]}).json()
    from payments.models import Event

    return {
        "api_key": api.api_key,
        "payment_id": authorized,
        "captured": captured,
        "refund_id": refund,
        "endpoint_id": endpoint["id"],
        "event_id": Event.objects.filter(payment_id=captured).first().id,
    }


def test_schemathesis_gets_no_5xx_and_only_conforming_answers_from_every_operation(
    merchant_objects: dict[str, str],
) -> None:
    """Generated requests (valid and invalid, hypothesis-driven, derandomized) to every operation, authenticated,
    in process through the WSGI application. Half the object-path requests use real ids, most POSTs fresh keys."""
    schema = schemathesis.openapi.from_wsgi(
        "/v1/schema?format=json",
        get_wsgi_application(),
        config=SchemathesisConfig.from_dict(
            {"phases": {"coverage": {"enabled": False}}, "generation": {"max-examples": EXAMPLES_PER_OPERATION}}
        ),
    )
    headers = {"Authorization": f"Bearer {merchant_objects['api_key']}"}
    sent: Counter[str] = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def call(case: Any) -> None:
            label = case.operation.label
            n = sent[label]
            sent[label] += 1
            if case.path_parameters and n % 2 == 0:
                case.path_parameters = {name: merchant_objects[name] for name in case.path_parameters}
            if case.method == "POST" and case.headers and "Idempotency-Key" in case.headers and n % 4 != 0:
                case.headers["Idempotency-Key"] = str(uuid.uuid4())
            if case.path == "/v1/refunds" and case.method == "POST" and isinstance(case.body, dict) and n % 2 == 0:
                case.body["payment"] = merchant_objects["captured"]
            case.call_and_validate(headers=headers, checks=CHECKS)

        call()

    assert len(sent) == sum(len(ops) for ops in load_schema()["paths"].values()), sent
    assert sum(sent.values()) >= MIN_REQUESTS, sent
