"""Webhooks: endpoints, Standard Webhooks signatures verified by the `standardwebhooks` library, retries with
every attempt recorded, subscriptions, and no private destinations in production."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks import Webhook

from config.platform.outbox.models import OutboxMessage
from payments.models import Event
from tests.conftest import MerchantClient, drain_outbox, payment_body
from webhooks.models import WebhookAttempt, WebhookDelivery

pytestmark = pytest.mark.django_db(transaction=True)


@dataclass
class Receiver:
    """A local HTTP endpoint that records what it receives and answers `statuses` in turn (then 204)."""

    url: str = ""
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests.append((dict(self.headers.items()), body))
            self.send_response(state.statuses.pop(0) if state.statuses else 204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_port}/hooks"
    yield state
    server.shutdown()
    server.server_close()


def create_endpoint(api: MerchantClient, url: str, events: list[str]) -> dict:
    response = api.post("/v1/webhook_endpoints", {"url": url, "enabled_events": events})
    assert response.status_code == 201, response.content
    return response.json()


def test_endpoint_secret_is_shown_once(api: MerchantClient, receiver: Receiver):
    endpoint = create_endpoint(api, receiver.url, ["*"])
    assert endpoint["secret"].startswith("whsec_")
    again = api.get(f"/v1/webhook_endpoints/{endpoint['id']}").json()
    assert "secret" not in again and again["url"] == receiver.url
    listed = api.get("/v1/webhook_endpoints").json()["data"]
    assert [e["id"] for e in listed] == [endpoint["id"]] and "secret" not in listed[0]


def test_another_merchant_cannot_see_an_endpoint(api: MerchantClient, other_api: MerchantClient, receiver: Receiver):
    endpoint = create_endpoint(api, receiver.url, ["*"])
    assert other_api.get(f"/v1/webhook_endpoints/{endpoint['id']}").status_code == 404
    assert other_api.get("/v1/webhook_endpoints").json()["data"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.com/x", "enabled_events": ["*"]}, "url"),
        ({"url": "https://example.com/x", "enabled_events": ["payment.exploded"]}, "enabled_events"),
        ({"url": "https://example.com/x", "enabled_events": []}, "enabled_events"),
        ({"url": "https://example.com/x"}, "enabled_events"),
    ],
)
def test_invalid_endpoints_are_refused(api: MerchantClient, body: dict, field: str):
    response = api.post("/v1/webhook_endpoints", body)
    assert response.status_code == 400
    assert field in [e["field"] for e in response.json()["errors"]]


def test_private_destinations_are_refused_in_production_settings(api: MerchantClient, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = False
    for url in ("https://127.0.0.1/x", "https://10.1.2.3/x", "https://localhost/x", "http://example.com/x"):
        response = api.post("/v1/webhook_endpoints", {"url": url, "enabled_events": ["*"]})
        assert response.status_code == 400, url


def test_delivery_to_a_name_resolving_to_a_private_address_is_blocked_at_send_time(settings):
    """Production settings: even a URL that passed creation cannot reach loopback when it is requested."""
    import requests

    from webhooks import delivery

    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = False
    signed = delivery.sign(secret="whsec_" + "A" * 32, message_id="evt_1", payload={"a": 1})
    with pytest.raises(requests.RequestException):
        delivery.send("http://localhost:9/", signed)


def test_a_captured_payment_sends_signed_events_that_standardwebhooks_verifies(api: MerchantClient, receiver: Receiver):
    endpoint = create_endpoint(api, receiver.url, ["*"])
    payment_id = api.post("/v1/payments", payment_body()).json()["id"]

    drain_outbox()

    verifier = Webhook(endpoint["secret"])
    received = [verifier.verify(body, headers) for headers, body in receiver.requests]
    assert [e["type"] for e in received] == ["payment.created", "payment.authorized", "payment.captured"]
    assert all(e["data"]["object"]["id"] == payment_id for e in received)
    assert received[-1]["data"]["object"]["status"] == "captured"
    headers = receiver.requests[-1][0]
    assert headers["webhook-id"] == received[-1]["id"]
    assert headers["webhook-signature"].startswith("v1,")
    # A forged body does not verify.
    tampered = receiver.requests[-1][1].replace(b"captured", b"voided")
    with pytest.raises(Exception, match="signature"):
        verifier.verify(tampered, headers)
    assert WebhookDelivery.objects.filter(status="succeeded").count() == 3


def test_a_webhook_body_is_the_public_event_byte_for_byte_and_its_signature_signs_those_bytes(
    api: MerchantClient, receiver: Receiver
):
    """Each delivered body is the compact JSON of the event's public form, field by field in this order (the
    object `GET /v1/events/{id}` answers), and `webhook-signature` signs exactly those bytes."""
    endpoint = create_endpoint(api, receiver.url, ["*"])
    payment_id = api.post("/v1/payments", payment_body(capture_method="manual")).json()["id"]
    drain_outbox()

    events = {e.id: e for e in Event.objects.filter(payment_id=payment_id)}
    assert len(events) == 2 and len(receiver.requests) == 2
    signer = Webhook(endpoint["secret"])
    for headers, body in receiver.requests:
        event = events[headers["webhook-id"]]
        public = {
            "id": event.id,
            "object": "event",
            "type": event.type,
            "created": event.created_at.isoformat().replace("+00:00", "Z"),
            "livemode": False,
            "request_id": event.request_id or None,
            "data": event.data,
        }
        assert body == json.dumps(public, separators=(",", ":"), ensure_ascii=False).encode()
        at = dt.datetime.fromtimestamp(int(headers["webhook-timestamp"]), tz=dt.UTC)
        assert headers["webhook-signature"] == signer.sign(msg_id=event.id, timestamp=at, data=body.decode())
        assert json.loads(body) == api.get(f"/v1/events/{event.id}").json()


def test_only_subscribed_events_are_delivered(api: MerchantClient, receiver: Receiver):
    create_endpoint(api, receiver.url, ["payment.failed"])
    api.post("/v1/payments", payment_body())
    failed_id = api.post("/v1/payments", payment_body(payment_method="tok_declined")).json()["id"]

    drain_outbox()

    types = [json.loads(body)["type"] for _, body in receiver.requests]
    assert types == ["payment.failed"]
    assert json.loads(receiver.requests[0][1])["data"]["object"]["id"] == failed_id


def test_failed_deliveries_are_retried_and_every_attempt_is_recorded(api: MerchantClient, receiver: Receiver):
    create_endpoint(api, receiver.url, ["payment.captured"])
    receiver.statuses = [500, 503]
    api.post("/v1/payments", payment_body())

    drain_outbox()

    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "succeeded" and delivery.attempts == 3
    attempts = list(WebhookAttempt.objects.filter(delivery=delivery).order_by("id"))
    assert [a.response_status for a in attempts] == [500, 503, 204]
    assert [a.succeeded for a in attempts] == [False, False, True]
    # The same event id is sent on every retry, so receivers can deduplicate.
    assert len({headers["webhook-id"] for headers, _ in receiver.requests}) == 1


def test_a_delivery_that_never_succeeds_ends_failed_and_dead_lettered(
    api: MerchantClient, receiver: Receiver, settings
):
    settings.WEBHOOKS_MAX_ATTEMPTS = 3
    create_endpoint(api, receiver.url, ["payment.captured"])
    receiver.statuses = [500] * 10
    api.post("/v1/payments", payment_body())

    drain_outbox()

    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", 3)
    row = OutboxMessage.objects.get(subscriber="webhooks.deliver")
    assert row.status == "dead" and "500" in row.last_error


def test_unreachable_endpoint_attempts_record_the_error(api: MerchantClient, settings):
    settings.WEBHOOKS_MAX_ATTEMPTS = 2
    create_endpoint(api, "http://127.0.0.1:9/nothing", ["payment.captured"])
    api.post("/v1/payments", payment_body())
    drain_outbox()
    attempts = list(WebhookAttempt.objects.order_by("id"))
    assert len(attempts) == 2 and attempts[0].response_status is None and "Connection" in attempts[0].error
