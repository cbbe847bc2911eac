"""API-key authentication: `Authorization: Bearer sk_test_…` (or `sk_live_…`).

The key is looked up by its SHA-256 hash; revoked keys fail. The authenticated "user" is a MerchantPrincipal,
which scopes every selector and service call to one merchant and one mode.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed

from payments.models import ApiKey, Merchant
from payments.services import hash_api_key


@dataclass(frozen=True)
class MerchantPrincipal:
    """Who is calling: the merchant and the API mode (`test` or `live`) of the key used."""

    merchant: Merchant
    mode: str
    api_key_id: str

    is_authenticated = True
    is_anonymous = False


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
        key = (
            ApiKey.objects.select_related("merchant")
            .filter(key_hash=hash_api_key(raw), revoked_at__isnull=True)
            .first()
        )
        if key is None:
            raise AuthenticationFailed("The API key is not valid or was revoked.")
        return MerchantPrincipal(merchant=key.merchant, mode=key.mode, api_key_id=key.id), key

    def authenticate_header(self, request: HttpRequest) -> str:
        return 'Bearer realm="clearhouse"'
