"""Merchant and API key use cases: create a merchant, create and revoke secret keys, hash a key.

A key is `sk_test_…` or `sk_live_…` plus 32 random base62 characters (about 190 bits); only its SHA-256 is stored.
"""

from __future__ import annotations

import hashlib
import secrets
import string

from django.db import transaction
from django.utils import timezone

from config.platform.errors import NotFound
from config.platform.merchants.errors import TooManyApiKeys
from config.platform.merchants.models import ApiKey, Merchant, Mode

_BASE62 = string.ascii_letters + string.digits


def hash_api_key(raw_key: str) -> str:
    """SHA-256 hex digest of a secret API key (keys carry ~190 random bits, so a fast hash suffices)."""
    return hashlib.sha256(raw_key.encode()).hexdigest()


MAX_ACTIVE_KEYS_PER_MODE = 2


@transaction.atomic
def api_key_create(*, merchant: Merchant, mode: str = Mode.TEST) -> tuple[ApiKey, str]:
    """Create a secret key (`sk_test_…` or `sk_live_…`) for `merchant` in `mode`; returns (row, plaintext).

    The plaintext is never stored (only its SHA-256). A merchant holds at most two active keys per mode, so a key
    can be rotated without downtime; a third raises TooManyApiKeys (revoke one first). Locks the merchant row;
    the partial unique constraint on (merchant, mode, slot) backs the limit up. Raises ValueError for a bad mode.
    """
    if mode not in Mode.values:
        raise ValueError(f"mode must be one of {Mode.values}, not {mode!r}")
    Merchant.objects.select_for_update().filter(pk=merchant.pk).first()
    used = set(
        ApiKey.objects.filter(merchant=merchant, mode=mode, revoked_at__isnull=True).values_list("slot", flat=True)
    )
    free = [slot for slot in range(1, MAX_ACTIVE_KEYS_PER_MODE + 1) if slot not in used]
    if not free:
        raise TooManyApiKeys(
            f"Merchant {merchant.pk} already has {MAX_ACTIVE_KEYS_PER_MODE} active {mode} keys; revoke one first."
        )
    raw = f"sk_{mode}_" + "".join(secrets.choice(_BASE62) for _ in range(32))
    key = ApiKey.objects.create(merchant=merchant, mode=mode, slot=free[0], prefix=raw[:16], key_hash=hash_api_key(raw))
    return key, raw


@transaction.atomic
def api_key_revoke(*, key_id: str) -> ApiKey:
    """Revoke the API key `key_id` (or a key whose `prefix` is `key_id`): it stops authenticating at once.

    Idempotent: revoking a revoked key returns it unchanged. Raises NotFound for an unknown key, and ValueError
    when a prefix matches several keys.
    """
    matches = list(ApiKey.objects.select_for_update().filter(pk=key_id)) or list(
        ApiKey.objects.select_for_update().filter(prefix=key_id)
    )
    if not matches:
        raise NotFound(f"No such API key: {key_id}")
    if len(matches) > 1:
        raise ValueError(f"{key_id!r} matches {len(matches)} keys; give the key id (key_…)")
    key = matches[0]
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    return key


@transaction.atomic
def merchant_create(*, name: str) -> tuple[Merchant, str]:
    """Create a merchant and its first test-mode secret key; returns (merchant, plaintext key)."""
    merchant = Merchant.objects.create(name=name)
    _, raw = api_key_create(merchant=merchant, mode=Mode.TEST)
    return merchant, raw
