"""Fraud scoring off the request path: rules as data, Redis velocity windows, holds through payments,
`payment.held`, idempotent scoring (also under concurrent workers)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.core.exceptions import ValidationError
from django_redis import get_redis_connection

from config.platform.outbox import engine as outbox
from config.platform.outbox.models import OutboxMessage
from fraud import services, velocity
from fraud.models import (
    AmountThreshold,
    FiredRule,
    FraudResult,
    IpCountryRange,
    ListEntry,
    Rule,
    ScoringSettings,
)
from payments.models import Event, SettlementHold, SettlementHoldStatus
from tests.conftest import MerchantClient, close_connection_after, drain_outbox, payment_body
from tests.operators import drain_only
from webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def rules(db: None):
    """Start from no configuration at all; each test adds the rules it needs (hold at 100 unless changed)."""
    FiredRule.objects.all().delete()
    FraudResult.objects.all().delete()
    Rule.objects.all().delete()
    ListEntry.objects.all().delete()
    AmountThreshold.objects.all().delete()
    IpCountryRange.objects.all().delete()
    ScoringSettings.objects.update_or_create(pk=1, defaults={"hold_score": 100})

    def add(name: str, kind: str, score: int, **params: int) -> Rule:
        return Rule.objects.create(name=name, kind=kind, score=score, **params)

    return add


def pay(api: MerchantClient, **overrides) -> str:
    response = api.post("/v1/payments", payment_body(**overrides))
    assert response.status_code == 202, response.content
    return response.json()["id"]


def fired(payment_id: str) -> list[tuple[str, int]]:
    return list(
        FiredRule.objects.filter(result__payment_id=payment_id).order_by("id").values_list("rule_name", "contribution")
    )


def event_types(payment_id: str) -> list[str]:
    return list(Event.objects.filter(payment_id=payment_id).order_by("id").values_list("type", flat=True))


def test_tok_risky_is_held_by_the_default_bin_blocklist_and_shows_its_hold(api: MerchantClient, fraud_defaults):
    endpoint = api.post("/v1/webhook_endpoints", {"url": "http://127.0.0.1:9/", "enabled_events": ["*"]}).json()
    payment_id = pay(api, payment_method="tok_risky", amount=1500)

    drain_only("payments.processor")
    drain_only("fraud.score")

    result = FraudResult.objects.get(payment_id=payment_id)
    assert (result.score, result.hold_score, result.decision) == (100, 80, "hold")
    assert fired(payment_id) == [("BIN blocklist", 100)]
    assert "400020" in FiredRule.objects.get(result=result).detail
    hold = SettlementHold.objects.get(payment_id=payment_id)
    assert (hold.status, hold.source, hold.reason) == ("active", "fraud", "fraud_review")
    assert hold.details["rules"][0]["rule"] == "BIN blocklist" and hold.details["score"] == 100
    assert event_types(payment_id) == ["payment.created", "payment.authorized", "payment.captured", "payment.held"]

    body = api.get(f"/v1/payments/{payment_id}").json()
    assert body["status"] == "captured"  # a hold stops settlement, not the card flow
    assert body["hold"]["status"] == "active" and body["hold"]["reason"] == "fraud_review"
    assert body["payment_method"]["card"]["bin"] == "400020"

    held_event = Event.objects.get(payment_id=payment_id, type="payment.held")
    assert held_event.data["object"]["hold"]["status"] == "active"
    drain_only("webhooks.fanout")
    assert WebhookDelivery.objects.filter(event=held_event, endpoint_id=endpoint["id"]).count() == 1


def test_an_ordinary_payment_is_scored_and_allowed_without_a_hold(api: MerchantClient, fraud_defaults):
    payment_id = pay(api)
    drain_outbox()

    result = FraudResult.objects.get(payment_id=payment_id)
    assert (result.score, result.decision) == (0, "allow")
    assert fired(payment_id) == []
    assert not SettlementHold.objects.filter(payment_id=payment_id).exists()
    assert "payment.held" not in event_types(payment_id)
    assert api.get(f"/v1/payments/{payment_id}").json()["hold"] is None


def test_authorization_and_capture_never_wait_for_fraud_scoring(api: MerchantClient, fraud_defaults):
    payment_id = pay(api, payment_method="tok_risky")

    drain_only("payments.processor")  # the scorer has not run at all

    assert api.get(f"/v1/payments/{payment_id}").json()["status"] == "captured"
    assert not FraudResult.objects.filter(payment_id=payment_id).exists()
    assert OutboxMessage.objects.get(key=payment_id, subscriber="fraud.score").status == "pending"

    drain_outbox()
    assert SettlementHold.objects.get(payment_id=payment_id).status == SettlementHoldStatus.ACTIVE


def test_scoring_the_same_event_twice_changes_nothing(api: MerchantClient, fraud_defaults):
    payment_id = pay(api, payment_method="tok_risky")
    drain_outbox()
    row = OutboxMessage.objects.get(key=payment_id, subscriber="fraud.score")

    OutboxMessage.objects.filter(pk=row.pk).update(status="dead")
    assert outbox.replay(message_id=row.pk)
    drain_outbox()
    again = services.payment_score(payment_id=payment_id, event_id="evt_other")

    assert FraudResult.objects.filter(payment_id=payment_id).count() == 1
    assert again.event_id == row.payload["event_id"]
    assert fired(payment_id) == [("BIN blocklist", 100)]
    assert SettlementHold.objects.filter(payment_id=payment_id).count() == 1
    assert event_types(payment_id).count("payment.held") == 1
    redis = get_redis_connection("default")
    members = [m.decode() for k in redis.scan_iter(f"{velocity.KEY_PREFIX}card:*") for m in redis.zrange(k, 0, -1)]
    assert members == [payment_id]


def test_two_workers_scoring_one_payment_at_once_record_one_result_and_one_hold(api: MerchantClient, fraud_defaults):
    payment_id = pay(api, payment_method="tok_risky")
    drain_only("payments.processor")
    barrier = threading.Barrier(4)
    results: list[int] = []

    @close_connection_after
    def score() -> None:
        barrier.wait()
        results.append(services.payment_score(payment_id=payment_id).pk)

    threads = [threading.Thread(target=score) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(results) == 4 and len(set(results)) == 1
    assert FraudResult.objects.filter(payment_id=payment_id).count() == 1
    assert FiredRule.objects.filter(result__payment_id=payment_id).count() == 1
    assert SettlementHold.objects.filter(payment_id=payment_id).count() == 1
    assert event_types(payment_id).count("payment.held") == 1


def test_card_velocity_fires_above_its_maximum_within_the_window(api: MerchantClient, rules):
    rules("Card velocity", "velocity_card", 100, window_seconds=3600, max_count=2)
    ids = [pay(api, customer={}) for _ in range(3)]
    drain_outbox()

    assert [FraudResult.objects.get(payment_id=i).decision for i in ids] == ["allow", "allow", "hold"]
    assert fired(ids[2]) == [("Card velocity", 100)]
    assert FiredRule.objects.get(result__payment_id=ids[2]).detail.startswith("3 payments with this card")


def test_ip_and_email_velocity_count_each_value_separately(api: MerchantClient, rules):
    rules("IP velocity", "velocity_ip", 10, window_seconds=600, max_count=1)
    rules("Email velocity", "velocity_email", 20, window_seconds=600, max_count=1)
    a = pay(api, customer={"email": "a@example.com", "ip": "198.51.100.1"})
    b = pay(api, customer={"email": "b@example.com", "ip": "198.51.100.1"})
    c = pay(api, customer={"email": "B@Example.com", "ip": "198.51.100.2"})
    drain_outbox()

    assert fired(a) == []
    assert fired(b) == [("IP velocity", 10)]
    assert fired(c) == [("Email velocity", 20)]  # emails are compared case-insensitively


def test_velocity_windows_slide_with_event_time_and_count_each_payment_once():
    t0 = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)

    def observe(member: str, minutes: int) -> list[int]:
        at = t0 + dt.timedelta(minutes=minutes)
        return velocity.observe(dimension="test", value="v", member=member, at=at, windows=[600, 3600])

    assert observe("p1", 0) == [1, 1]
    assert observe("p2", 30) == [1, 2]
    assert observe("p3", 35) == [2, 3]
    assert observe("p3", 35) == [2, 3]  # the same payment again: nothing added
    assert observe("p4", 70) == [1, 3]  # p1 (at 0) left the hour window; p2 and p3 are still in it
    assert observe("p5", 200) == [1, 1]
    redis = get_redis_connection("default")
    assert 0 < redis.pttl(velocity.key_for("test", "v")) <= 3600 * 1000


def test_blocklisted_ip_network_email_and_country_each_fire(api: MerchantClient, rules):
    rules("IP blocklist", "blocklist_ip", 10)
    rules("Email blocklist", "blocklist_email", 20)
    rules("Country blocklist", "blocklist_country", 40)
    rules("BIN blocklist", "blocklist_bin", 80)
    for list_type, value in [("ip", "198.51.100.0/24"), ("email", "Mallory@Example.com"), ("country", "us")]:
        entry = ListEntry(list_type=list_type, value=value)
        entry.full_clean()
        entry.save()
    risky = pay(api, customer={"email": "mallory@example.com", "ip": "198.51.100.77"})
    clean = pay(api, payment_method="tok_mastercard", customer={"email": "ada@example.com", "ip": "203.0.113.7"})
    drain_outbox()

    assert fired(risky) == [("IP blocklist", 10), ("Email blocklist", 20), ("Country blocklist", 40)]
    result = FraudResult.objects.get(payment_id=risky)
    assert (result.score, result.decision) == (70, "allow")  # 70 < the hold score of 100
    assert fired(clean) == []


def test_amount_thresholds_are_per_currency_in_minor_units(api: MerchantClient, rules):
    rules("Large amount", "amount_threshold", 100)
    AmountThreshold.objects.create(currency="EUR", amount=10_000)
    at = pay(api, amount=10_000)
    below = pay(api, amount=9_999)
    other_currency = pay(api, amount=10_000, currency="USD")
    drain_outbox()

    assert fired(at) == [("Large amount", 100)] and SettlementHold.objects.filter(payment_id=at).exists()
    assert fired(below) == [] and fired(other_currency) == []


def test_country_mismatch_uses_the_most_specific_known_ip_range(api: MerchantClient, rules):
    rules("Country mismatch", "country_mismatch", 30)
    IpCountryRange.objects.create(network="203.0.113.0/24", country="GB")
    IpCountryRange.objects.create(network="203.0.113.0/28", country="US")
    same = pay(api, customer={"ip": "203.0.113.7"})  # in the /28: US, like tok_visa's card
    mismatch = pay(api, customer={"ip": "203.0.113.100"})  # only in the /24: GB
    unknown = pay(api, customer={"ip": "192.0.2.1"})
    drain_outbox()

    assert fired(same) == []
    assert fired(mismatch) == [("Country mismatch", 30)]
    assert "card issued in US, IP in GB" in FiredRule.objects.get(result__payment_id=mismatch).detail
    assert fired(unknown) == []


def test_rules_and_the_hold_score_are_data(api: MerchantClient, rules):
    disabled = rules("Off", "blocklist_bin", 500)
    disabled.enabled = False
    disabled.save()
    rules("BIN watch", "blocklist_bin", 30)
    ListEntry.objects.create(list_type="bin", value="424242")
    ScoringSettings.objects.filter(pk=1).update(hold_score=30)
    payment_id = pay(api)
    drain_outbox()

    result = FraudResult.objects.get(payment_id=payment_id)
    assert fired(payment_id) == [("BIN watch", 30)]
    assert (result.score, result.hold_score, result.decision) == (30, 30, "hold")


def test_list_values_are_normalized_and_validated():
    entry = ListEntry(list_type="ip", value=" 203.0.113.7 ")
    entry.clean()
    assert entry.value == "203.0.113.7/32"
    for list_type, bad in [("bin", "4242"), ("ip", "not-an-ip"), ("country", "USA"), ("email", "nobody")]:
        with pytest.raises(ValidationError):
            ListEntry(list_type=list_type, value=bad).clean()
    with pytest.raises(ValidationError):
        Rule(name="x", kind="velocity_ip", score=1).clean()
