"""API-key authentication: `Authorization: Bearer sk_test_…` (or `sk_live_…`).

The key is looked up by its SHA-256 hash; revoked keys fail. The authenticated "user" is a MerchantPrincipal,
which scopes every selector and service call to one merchant and one mode.

Each process keeps the keys it has seen (by hash) for up to API_KEY_CACHE_TTL seconds, so a request does not
pay for a PostgreSQL lookup. Revocation still takes effect on the next request: every change to a key or a
merchant bumps a generation counter in Redis (config.platform.merchants.keycache), every request reads it (one
Redis GET), and an entry cached under an older generation is looked up again. If Redis cannot be read, the key is
looked up in
PostgreSQL, as without the cache.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed

from config.platform.merchants import keycache
from config.platform.merchants.models import ApiKey, Merchant
from config.platform.merchants.services import hash_api_key


@dataclass(frozen=True)
class MerchantPrincipal:
    """Who is calling: the merchant and the API mode (`test` or `live`) of the key used."""

    merchant: Merchant
    mode: str
    api_key_id: str

    is_authenticated = True
    is_anonymous = False


@dataclass(frozen=True)
class _Entry:
    principal: MerchantPrincipal
    key: ApiKey
    generation: int
    cached_at: float


_MAX_ENTRIES = 10_000
_entries: dict[str, _Entry] = {}
_entries_lock = threading.Lock()


def _lookup(key_hash: str) -> ApiKey | None:
    return ApiKey.objects.select_related("merchant").filter(key_hash=key_hash, revoked_at__isnull=True).first()


class ApiKeyAuthentication(BaseAuthentication):
    """DRF authentication for secret API keys sent as a Bearer token.

    No header: not authenticated (401 `authentication_required`). Wrong scheme, unknown or revoked key:
    401 `invalid_api_key`.
    """

    def authenticate(self, request: HttpRequest) -> tuple[MerchantPrincipal, ApiKey] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _, raw = header.partition(" ")
        raw = raw.strip()
        if scheme.lower() != "bearer" or not raw.startswith(("sk_test_", "sk_live_")):
            raise AuthenticationFailed("Send your secret API key as `Authorization: Bearer sk_…`.")
        key_hash = hash_api_key(raw)
        generation = keycache.generation()  # read before any lookup, so an entry never outlives a revocation
        ttl = float(getattr(settings, "API_KEY_CACHE_TTL", 60.0))
        entry = _entries.get(key_hash)
        if (
            entry is not None
            and generation is not None
            and entry.generation == generation
            and time.monotonic() - entry.cached_at < ttl
        ):
            return entry.principal, entry.key
        key = _lookup(key_hash)
        if key is None:
            _entries.pop(key_hash, None)
            raise AuthenticationFailed("The API key is not valid or was revoked.")
        principal = MerchantPrincipal(merchant=key.merchant, mode=key.mode, api_key_id=key.id)
        if generation is not None and ttl > 0:
            with _entries_lock:
                if len(_entries) >= _MAX_ENTRIES:
                    _entries.clear()
                _entries[key_hash] = _Entry(principal, key, generation, time.monotonic())
        return principal, key

    def authenticate_header(self, request: HttpRequest) -> str:
        return 'Bearer realm="clearhouse"'
