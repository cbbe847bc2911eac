"""`manage.py create_merchant NAME`: create a merchant and print its id and test-mode secret key as JSON."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand

from config.platform.merchants.services import merchant_create


class Command(BaseCommand):
    """Prints `{"id": "mer_…", "name": …, "api_key": "sk_test_…"}`. Only the key's hash is stored: keep it now."""

    help = "Create a merchant; prints its id and a test-mode secret API key (shown once) as JSON."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("name")

    def handle(self, *args: Any, **options: Any) -> None:
        merchant, raw_key = merchant_create(name=options["name"])
        self.stdout.write(json.dumps({"id": merchant.id, "name": merchant.name, "api_key": raw_key}))
