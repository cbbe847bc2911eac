"""API keys: test and live modes fully isolated, stored hashed, at most two active per mode for rotation without
downtime, created and revoked by management commands and in the admin."""

from __future__ import annotations

import io
import json
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client

from config.platform.merchants import services
from config.platform.merchants.errors import TooManyApiKeys
from config.platform.merchants.models import ApiKey
from tests.conftest import (
    MerchantClient,
    captured_payment,
    client_for,
    live_client,
    payment_body,
    post_json,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_test_objects_are_invisible_to_live_keys_and_the_other_way_round(api: MerchantClient):
    live, live_key = live_client(api.merchant)
    assert live_key.startswith("sk_live_")
    test_payment = captured_payment(api, amount=1000)
    test_refund = api.post("/v1/refunds", {"payment": test_payment, "amount": 100}).json()["id"]
    live_payment = post_json(live, "/v1/payments", payment_body()).json()["id"]
    assert post_json(live, "/v1/payments", payment_body()).json()["livemode"] is True

    assert live.get(f"/v1/payments/{test_payment}").status_code == 404
    assert live.get(f"/v1/refunds/{test_refund}").status_code == 404
    assert post_json(live, "/v1/refunds", {"payment": test_payment}).status_code == 404
    assert post_json(live, f"/v1/payments/{test_payment}/capture").status_code == 404
    assert test_payment not in [p["id"] for p in live.get("/v1/payments", {"limit": 100}).json()["data"]]
    assert all(e["livemode"] for e in live.get("/v1/events", {"limit": 100}).json()["data"])
    assert live.get("/v1/refunds").json()["data"] == []

    assert api.get(f"/v1/payments/{live_payment}").status_code == 404
    assert live_payment not in [p["id"] for p in api.get("/v1/payments", limit=100).json()["data"]]
    assert not any(e["livemode"] for e in api.get("/v1/events", limit=100).json()["data"])


def test_a_merchant_holds_two_active_keys_per_mode_and_rotates_without_downtime(api: MerchantClient):
    first = api.api_key
    _, second = services.api_key_create(merchant=api.merchant, mode="test")
    # Both keys work at once while the merchant deploys the new one.
    assert client_for(first).get("/v1/payments").status_code == 200
    assert client_for(second).get("/v1/payments").status_code == 200
    with pytest.raises(TooManyApiKeys):
        services.api_key_create(merchant=api.merchant, mode="test")
    services.api_key_create(merchant=api.merchant, mode="live")  # live keys have their own two slots

    old = ApiKey.objects.get(prefix=first[:16])
    services.api_key_revoke(key_id=old.id)

    refused = client_for(first).get("/v1/payments")
    assert refused.status_code == 401 and refused.json()["code"] == "invalid_api_key"
    assert client_for(second).get("/v1/payments").status_code == 200
    _, third = services.api_key_create(merchant=api.merchant, mode="test")  # the revoked key's slot is free
    assert client_for(third).get("/v1/payments").status_code == 200


def test_the_database_allows_only_two_active_keys_per_mode(api: MerchantClient):
    from django.db import IntegrityError, transaction

    services.api_key_create(merchant=api.merchant, mode="test")
    with pytest.raises(IntegrityError), transaction.atomic():
        ApiKey.objects.create(merchant=api.merchant, mode="test", slot=1, prefix="sk_test_x", key_hash="0" * 64)
    with pytest.raises(IntegrityError), transaction.atomic():
        ApiKey.objects.create(merchant=api.merchant, mode="test", slot=3, prefix="sk_test_y", key_hash="1" * 64)


def test_keys_are_stored_only_as_sha256_hashes(api: MerchantClient):
    _, raw = services.api_key_create(merchant=api.merchant, mode="live")
    key = ApiKey.objects.get(prefix=raw[:16])
    assert key.key_hash == services.hash_api_key(raw) and raw not in (key.key_hash, key.prefix)
    assert not ApiKey.objects.filter(key_hash=raw).exists()


def test_the_create_command_is_a_dry_run_until_committed(api: MerchantClient):
    out = io.StringIO()
    call_command("api_key_create", api.merchant.pk, "--mode", "live", stdout=out)
    assert "Dry run" in out.getvalue() and not ApiKey.objects.filter(mode="live").exists()

    out = io.StringIO()
    call_command("api_key_create", api.merchant.pk, "--mode", "live", "--commit", stdout=out)
    created = json.loads(out.getvalue())
    assert created["api_key"].startswith("sk_live_") and created["mode"] == "live"
    assert client_for(created["api_key"]).get("/v1/payments").status_code == 200

    call_command("api_key_create", api.merchant.pk, "--mode", "live", "--commit", stdout=io.StringIO())
    with pytest.raises(CommandError, match="revoke one first"):
        call_command("api_key_create", api.merchant.pk, "--mode", "live", "--commit", stdout=io.StringIO())
    with pytest.raises(CommandError, match="No such merchant"):
        call_command("api_key_create", "mer_nope", "--commit", stdout=io.StringIO())


def test_the_revoke_command_is_a_dry_run_until_committed(api: MerchantClient):
    prefix = api.api_key[:16]
    out = io.StringIO()
    call_command("api_key_revoke", prefix, stdout=out)
    assert "Dry run" in out.getvalue()
    assert client_for(api.api_key).get("/v1/payments").status_code == 200

    call_command("api_key_revoke", prefix, "--commit", stdout=io.StringIO())
    assert client_for(api.api_key).get("/v1/payments").status_code == 401
    with pytest.raises(CommandError, match="No such API key"):
        call_command("api_key_revoke", "key_nope", "--commit", stdout=io.StringIO())


def test_keys_are_created_and_revoked_in_the_admin(api: MerchantClient):
    get_user_model().objects.create_superuser("root", "", "pw")
    admin = Client()
    admin.login(username="root", password="pw")

    response = admin.post("/admin/merchants/apikey/add/", {"merchant": api.merchant.pk, "mode": "live"}, follow=True)
    assert response.status_code == 200
    shown = re.search(r"sk_live_[A-Za-z0-9]{32}", response.content.decode())
    assert shown, "the new key is shown once"
    raw = shown.group()
    assert client_for(raw).get("/v1/payments").status_code == 200
    key = ApiKey.objects.get(prefix=raw[:16])
    assert key.key_hash == services.hash_api_key(raw)
    listing = admin.get("/admin/merchants/apikey/").content.decode()
    assert key.prefix in listing and raw not in listing

    admin.post(
        "/admin/merchants/apikey/",
        {"action": "revoke_selected", "_selected_action": [key.pk]},
        follow=True,
    )
    assert client_for(raw).get("/v1/payments").status_code == 401


def test_the_admin_refuses_a_third_active_key(api: MerchantClient):
    services.api_key_create(merchant=api.merchant, mode="test")
    get_user_model().objects.create_superuser("root", "", "pw")
    admin = Client()
    admin.login(username="root", password="pw")
    response = admin.post("/admin/merchants/apikey/add/", {"merchant": api.merchant.pk, "mode": "test"}, follow=True)
    assert "revoke one first" in response.content.decode()
    assert ApiKey.objects.filter(merchant=api.merchant, mode="test", revoked_at__isnull=True).count() == 2


def _apikey_queries(client: Client) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert client.get("/v1/payments").status_code == 200
    return sum("payments_apikey" in q["sql"] for q in queries.captured_queries)


def test_a_known_key_is_not_looked_up_again_until_a_key_or_merchant_changes(api: MerchantClient):
    """The per-process key cache: one lookup, then none; any key or merchant save invalidates every entry."""
    client = client_for(api.api_key)
    assert _apikey_queries(client) == 1
    assert _apikey_queries(client) == 0
    api.merchant.name = "Renamed"
    api.merchant.save()
    assert _apikey_queries(client) == 1
    assert _apikey_queries(client) == 0


def test_a_revoked_key_is_refused_on_the_next_request_although_it_was_cached(api: MerchantClient):
    client = client_for(api.api_key)
    assert client.get("/v1/payments").status_code == 200  # cached now
    services.api_key_revoke(key_id=ApiKey.objects.get(prefix=api.api_key[:16]).id)
    refused = client.get("/v1/payments")
    assert refused.status_code == 401 and refused.json()["code"] == "invalid_api_key"


def test_a_flushed_redis_invalidates_the_cache_even_for_a_change_made_around_the_orm(api: MerchantClient):
    """A change with no signal (QuerySet.update) while Redis loses its counter: the counter restarts at a new random
    value, so the old entry does not match and the key is looked up (and refused)."""
    import redis
    from django.conf import settings
    from django.utils import timezone

    client = client_for(api.api_key)
    assert client.get("/v1/payments").status_code == 200
    ApiKey.objects.filter(prefix=api.api_key[:16]).update(revoked_at=timezone.now())
    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    assert client.get("/v1/payments").status_code == 401


def test_without_redis_every_request_looks_the_key_up(api: MerchantClient, redis_down: None):
    client = client_for(api.api_key)
    assert _apikey_queries(client) == 1
    assert _apikey_queries(client) == 1
    services.api_key_revoke(key_id=ApiKey.objects.get(prefix=api.api_key[:16]).id)
    assert client.get("/v1/payments").status_code == 401


def test_a_lost_generation_counter_never_counts_up_to_old_values_again():
    """Redis lost the counter and the next write is a bump: it starts from a random value, not from 1."""
    import redis
    from django.conf import settings

    from config.platform.merchants import keycache

    client = redis.Redis.from_url(settings.REDIS_URL)
    seen = set()
    for _ in range(3):
        client.delete(keycache.KEY)
        keycache.bump()
        keycache.bump()
        seen.add(keycache.generation())
    assert len(seen) == 3 and min(seen) > 2**20
