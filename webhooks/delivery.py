"""Signing and sending one webhook request (Standard Webhooks, https://www.standardwebhooks.com/).

Headers: `webhook-id` (the event id, the same on every retry, so receivers can deduplicate),
`webhook-timestamp` (Unix seconds), `webhook-signature` (`v1,<base64 HMAC-SHA256 of id.timestamp.body>`).
Outbound requests go through requests-hardened: no redirects, connect/read timeouts, and, unless
WEBHOOKS_ALLOW_PRIVATE_NETWORKS, no private, loopback or link-local destinations (checked on the resolved IP,
so DNS tricks do not reach the internal network).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from functools import cache

import requests
from django.conf import settings
from requests_hardened import Config, Manager
from standardwebhooks import Webhook

USER_AGENT = "Clearhouse-Webhooks/1.0"


@dataclass(frozen=True, kw_only=True)
class SignedRequest:
    """A ready-to-send webhook: the exact body bytes and the headers that sign them."""

    body: bytes
    headers: dict[str, str]


def sign(*, secret: str, message_id: str, payload: dict, timestamp: dt.datetime | None = None) -> SignedRequest:
    """Serialise `payload` (compact JSON) and sign it with the endpoint's `whsec_…` secret."""
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    when = timestamp or dt.datetime.now(tz=dt.UTC)
    signature = Webhook(secret).sign(msg_id=message_id, timestamp=when, data=body)
    return SignedRequest(
        body=body.encode(),
        headers={
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "webhook-id": message_id,
            "webhook-timestamp": str(int(when.timestamp())),
            "webhook-signature": signature,
        },
    )


@cache
def _manager(allow_private: bool, connect: float, read: float) -> Manager:
    return Manager(
        Config(
            ip_filter_enable=not allow_private,
            ip_filter_allow_loopback_ips=False,
            never_redirect=True,
            default_timeout=(connect, read),
            user_agent_override=USER_AGENT,
        )
    )


def send(url: str, request: SignedRequest) -> requests.Response:
    """POST the signed request to `url`. Raises requests.RequestException (including a refused private
    destination) on transport failures; any HTTP answer is returned."""
    manager = _manager(
        bool(settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS),
        float(settings.WEBHOOKS_CONNECT_TIMEOUT),
        float(settings.WEBHOOKS_READ_TIMEOUT),
    )
    return manager.send_request("POST", url, data=request.body, headers=request.headers)
