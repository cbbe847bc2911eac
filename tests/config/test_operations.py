"""Operations basics: health probes, Prometheus metrics, JSON logs carrying the request id into the worker,
Sentry initialisation."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from config.platform.outbox.models import OutboxMessage
from payments.models import Event
from tests.conftest import MerchantClient, drain_outbox, payment_body

pytestmark = pytest.mark.django_db(transaction=True)


def test_healthz_answers_without_touching_anything():
    response = Client().get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz_checks_database_and_redis(settings):
    ok = Client().get("/readyz")
    assert ok.status_code == 200
    assert ok.json()["checks"]["database"].startswith("ok") and ok.json()["checks"]["redis"].startswith("ok")

    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    down = Client().get("/readyz")
    assert down.status_code == 503
    assert down.json()["checks"]["redis"].startswith("error")


def metric(text: str, name: str, labels: str = "") -> float:
    pattern = rf"^{re.escape(name)}{re.escape(labels)} ([0-9.e+-]+)$"
    match = re.search(pattern, text, re.MULTILINE)
    assert match, f"{name}{labels} not in /metrics"
    return float(match.group(1))


def test_metrics_expose_payments_by_status_outbox_lag_and_dead_letters(api: MerchantClient, settings):
    settings.OUTBOX_MAX_ATTEMPTS = 1
    api.post("/v1/payments", payment_body())
    api.post("/v1/payments", payment_body(payment_method="tok_declined"))
    before = Client().get("/metrics").content.decode()
    assert metric(before, "clearhouse_payments", '{status="processing"}') == 2
    assert metric(before, "clearhouse_outbox_pending", '{subscriber="payments.processor"}') == 2
    assert metric(before, "clearhouse_outbox_lag_seconds") >= 0

    drain_outbox()
    OutboxMessage.objects.filter(pk=OutboxMessage.objects.first().pk).update(status="dead")
    after = Client().get("/metrics").content.decode()
    assert metric(after, "clearhouse_payments", '{status="captured"}') == 1
    assert metric(after, "clearhouse_payments", '{status="failed"}') == 1
    assert metric(after, "clearhouse_payment_events_total", '{type="payment.captured"}') == 1
    assert metric(after, "clearhouse_outbox_lag_seconds") == 0
    assert (
        sum(float(v) for v in re.findall(r"^clearhouse_outbox_dead_letters\{[^}]*\} ([0-9.]+)$", after, re.MULTILINE))
        == 1
    )
    assert "django_http_requests_total_by_method_total" in after  # django-prometheus's own series


def test_the_request_id_travels_from_the_request_into_the_workers_events_and_logs(
    api: MerchantClient, caplog: pytest.LogCaptureFixture
):
    payment_id = api.post("/v1/payments", payment_body(), HTTP_X_REQUEST_ID="req-abc-123").json()["id"]
    assert set(OutboxMessage.objects.filter(key=payment_id).values_list("request_id", flat=True)) == {"req-abc-123"}

    with caplog.at_level("INFO"):
        drain_outbox()

    # Events the worker emitted carry the id of the request that started it all.
    assert set(Event.objects.filter(payment_id=payment_id).values_list("request_id", flat=True)) == {"req-abc-123"}
    worker_logs = [
        r.msg for r in caplog.records if isinstance(r.msg, dict) and r.msg.get("event", "").startswith("payments.")
    ]
    assert {m["event"] for m in worker_logs} >= {"payments.authorize.done", "payments.capture.done"}
    assert {m["request_id"] for m in worker_logs} == {"req-abc-123"}
    assert {m["payment_id"] for m in worker_logs} == {payment_id}


def test_logs_are_one_json_object_per_line_in_production_format():
    import logging
    import logging.config

    from config.observability import configure_logging

    config = configure_logging(level="INFO", fmt="json")
    formatter = logging.config.dictConfigClass(config).configure_custom(config["formatters"]["structured"])
    record = logging.LogRecord("clearhouse.test", logging.INFO, __file__, 1, "hello %s", ("world",), None)
    line = formatter.format(record)
    parsed = json.loads(line)
    assert parsed["event"] == "hello world" and parsed["level"] == "info"


def test_sentry_is_initialised_only_when_a_dsn_is_set():
    import sentry_sdk

    from config.observability import configure_sentry

    assert configure_sentry(dsn="", environment="test") is False
    try:
        assert configure_sentry(dsn="https://public@127.0.0.1/1", environment="test") is True
        assert sentry_sdk.get_client().is_active()
    finally:
        sentry_sdk.init(dsn=None)


def test_responses_carry_the_request_id(api: MerchantClient):
    response = api.post("/v1/payments", payment_body(), HTTP_X_REQUEST_ID="req-xyz")
    assert response["Request-Id"] == "req-xyz"
    generated = api.get("/v1/payments")["Request-Id"]
    assert len(generated) == 36  # a UUID when the caller sent none
