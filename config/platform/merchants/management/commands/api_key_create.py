"""`manage.py api_key_create MERCHANT_ID --mode test|live [--commit]`: create a secret API key for a merchant.

Without `--commit` it only says what it would do (a dry run). With it, it prints
`{"id": "key_…", "merchant": "mer_…", "mode": …, "api_key": "sk_…"}`; only the key's hash is stored, so keep the
plaintext now. A merchant holds at most two active keys per mode (rotation: create the new key, switch to it,
then revoke the old one with `api_key_revoke`).
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from config.platform.merchants.errors import TooManyApiKeys
from config.platform.merchants.models import ApiKey, Merchant, Mode
from config.platform.merchants.services import MAX_ACTIVE_KEYS_PER_MODE, api_key_create


class Command(BaseCommand):
    """Create a test or live secret key for a merchant (dry run unless --commit)."""

    help = "Create a secret API key for a merchant; prints it once as JSON. Dry run unless --commit."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("merchant_id")
        parser.add_argument("--mode", choices=Mode.values, default=Mode.TEST)
        parser.add_argument("--commit", action="store_true", help="Create the key (otherwise only a dry run).")

    def handle(self, *args: Any, **options: Any) -> None:
        """Print the dry run, or create the key and print it as JSON. CommandError for an unknown merchant or
        when two active keys exist in the mode."""
        merchant = Merchant.objects.filter(pk=options["merchant_id"]).first()
        if merchant is None:
            raise CommandError(f"No such merchant: {options['merchant_id']}")
        mode = options["mode"]
        active = ApiKey.objects.filter(merchant=merchant, mode=mode, revoked_at__isnull=True).count()
        if not options["commit"]:
            self.stdout.write(
                f"Dry run: would create a {mode} key for {merchant} "
                f"({active} of {MAX_ACTIVE_KEYS_PER_MODE} active {mode} keys in use). Add --commit to create it."
            )
            return
        try:
            key, raw = api_key_create(merchant=merchant, mode=mode)
        except TooManyApiKeys as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(json.dumps({"id": key.id, "merchant": merchant.id, "mode": mode, "api_key": raw}))
