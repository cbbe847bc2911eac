"""`manage.py create_staff_user USERNAME --group Finance|Support`: an admin login in a ready-made group."""

from __future__ import annotations

import json
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from config.platform.staff_groups import FINANCE, SUPPORT


class Command(BaseCommand):
    """Create a staff user in "Finance" or "Support" (config.platform.staff_groups) with a random password and print
    `{"username", "group", "password"}` as JSON. The password is shown only here (Django stores its hash).
    Exits with an error when the user already exists."""

    help = "Create a staff user in the Finance or Support group; prints a random password (shown once) as JSON."

    def add_arguments(self, parser: Any) -> None:
        """USERNAME and --group (Finance or Support)."""
        parser.add_argument("username")
        parser.add_argument("--group", required=True, choices=[FINANCE, SUPPORT])

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        """Create the user in the group and print its password once."""
        user_model = get_user_model()
        if user_model.objects.filter(username=options["username"]).exists():
            raise CommandError(f"user {options['username']!r} already exists")
        group = Group.objects.filter(name=options["group"]).first()
        if group is None:
            raise CommandError(f"no group {options['group']!r}: run `manage.py migrate` first")
        password = secrets.token_urlsafe(12)
        user = user_model.objects.create_user(username=options["username"], password=password, is_staff=True)
        user.groups.add(group)
        self.stdout.write(json.dumps({"username": user.get_username(), "group": group.name, "password": password}))
