"""`manage.py api_key_revoke KEY [--commit]`: revoke an API key (by id `key_…` or by its 16-character prefix).

Without `--commit` it only shows which key it would revoke (a dry run). A revoked key stops authenticating at once
(401 `invalid_api_key`) and frees its slot for a new key.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from config.platform.errors import NotFound
from config.platform.merchants.models import ApiKey
from config.platform.merchants.services import api_key_revoke


class Command(BaseCommand):
    """Revoke an API key (dry run unless --commit)."""

    help = "Revoke an API key given its id (key_…) or prefix (sk_live_AbCdEfGh). Dry run unless --commit."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("key", help="The key's id or its prefix (the first 16 characters of the secret).")
        parser.add_argument("--commit", action="store_true", help="Revoke it (otherwise only a dry run).")

    def handle(self, *args: Any, **options: Any) -> None:
        """Print the dry run, or revoke the key. CommandError for an unknown or ambiguous key."""
        matches = list(
            ApiKey.objects.filter(Q(pk=options["key"]) | Q(prefix=options["key"])).select_related("merchant")
        )
        if not matches:
            raise CommandError(f"No such API key: {options['key']}")
        if len(matches) > 1:
            raise CommandError(f"{options['key']!r} matches {len(matches)} keys; give the key id (key_…).")
        key = matches[0]
        if not options["commit"]:
            state = "already revoked" if key.revoked_at else "active"
            self.stdout.write(f"Dry run: would revoke {key.id} {key} of {key.merchant} ({state}). Add --commit.")
            return
        try:
            key = api_key_revoke(key_id=key.id)
        except NotFound as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Revoked {key.id} {key} of {key.merchant} at {key.revoked_at.isoformat()}.")
