"""Per-merchant rate limits: atomic token buckets in Redis (no overshoot under concurrency), separate read and
write budgets, 429 with Retry-After and RateLimit-* fields, and fail-open when Redis is down."""

from __future__ import annotations

import threading
import uuid

import pytest

from config.platform.http import ratelimit
from tests.conftest import MerchantClient, payment_body

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def tight(settings) -> None:
    """3 reads and 2 writes per merchant, refilling so slowly that no token comes back during a test."""
    settings.RATE_LIMIT_READ_BURST = 3
    settings.RATE_LIMIT_READ_RATE = 0.001
    settings.RATE_LIMIT_WRITE_BURST = 2
    settings.RATE_LIMIT_WRITE_RATE = 0.001


def test_concurrent_requests_cannot_overshoot_the_bucket(settings):
    settings.RATE_LIMIT_WRITE_BURST = 10
    settings.RATE_LIMIT_WRITE_RATE = 0.001
    merchant_id = f"mer_{uuid.uuid4().hex}"
    barrier = threading.Barrier(40)
    allowed: list[bool] = []
    lock = threading.Lock()

    def take() -> None:
        barrier.wait()
        decision = ratelimit.take(merchant_id=merchant_id, mode="test", budget="write")
        assert decision is not None
        with lock:
            allowed.append(decision.allowed)

    threads = [threading.Thread(target=take) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert allowed.count(True) == 10 and allowed.count(False) == 30


def test_reads_over_the_budget_get_429_with_retry_after_and_ratelimit_fields(api: MerchantClient, tight: None):
    remaining = []
    for _ in range(3):
        response = api.get("/v1/payments")
        assert response.status_code == 200
        assert response["RateLimit-Limit"] == "3"
        remaining.append(response["RateLimit-Remaining"])
    assert remaining == ["2", "1", "0"]

    refused = api.get("/v1/payments")

    assert refused.status_code == 429 and refused["Content-Type"] == "application/problem+json"
    assert refused.json()["code"] == "rate_limited"
    assert int(refused["Retry-After"]) >= 1
    assert (refused["RateLimit-Limit"], refused["RateLimit-Remaining"]) == ("3", "0")
    assert int(refused["RateLimit-Reset"]) >= 1 and refused["RateLimit-Policy"].startswith("3;w=")


def test_writes_have_their_own_budget(api: MerchantClient, tight: None):
    for _ in range(3):
        api.get("/v1/payments")
    assert api.get("/v1/payments").status_code == 429

    assert api.post("/v1/payments", payment_body()).status_code == 202
    assert api.post("/v1/payments", payment_body()).status_code == 202
    refused = api.post("/v1/payments", payment_body())
    assert refused.status_code == 429 and refused["RateLimit-Limit"] == "2"
    from config.platform.idempotency.models import IdempotencyKey
    from payments.models import Payment

    assert Payment.objects.count() == 2 and IdempotencyKey.objects.count() == 2  # the refused write stored nothing


def test_limits_are_per_merchant(api: MerchantClient, other_api: MerchantClient, tight: None):
    for _ in range(4):
        api.get("/v1/payments")
    assert api.get("/v1/payments").status_code == 429
    assert other_api.get("/v1/payments").status_code == 200


def test_when_redis_is_down_requests_pass_and_a_warning_is_logged(
    api: MerchantClient, tight: None, redis_down: None, caplog: pytest.LogCaptureFixture
):
    with caplog.at_level("WARNING"):
        statuses = [api.get("/v1/payments").status_code for _ in range(5)]
    assert statuses == [200] * 5
    assert "ratelimit.redis_unavailable" in caplog.text
