"""Fixtures for the operators' side (fraud, admin, reconciliation): staff users in the ready-made groups, the
default fraud configuration, a sandbox acquirer of the test's own, and running one outbox subscriber only.

Data migrations create the groups and the default fraud rules, but transactional tests flush the database after
themselves, so these fixtures run the same migration code again when its rows are gone.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.test import Client

from config.platform.outbox import engine as outbox
from fraud import defaults
from payments.processors import get_processor
from tests.conftest import Acquirer, processor_settings, start_acquirer

GROUP_MIGRATIONS = (
    "payments.migrations.0003_finance_and_support_groups",
    "fraud.migrations.0003_finance_and_support_permissions",
    "reconciliation.migrations.0002_finance_and_support_permissions",
    "webhooks.migrations.0002_finance_and_support_permissions",
    "config.platform.merchants.migrations.0002_finance_and_support_permissions",
    "config.platform.outbox.migrations.0002_finance_and_support_permissions",
)


def ensure_staff_groups() -> None:
    """Run the group data migrations' code (idempotent) so "Finance" and "Support" exist with their permissions."""
    for name in GROUP_MIGRATIONS:
        importlib.import_module(name).forwards(django_apps, None)


@pytest.fixture
def staff_groups(db: None) -> None:
    """The "Finance" and "Support" groups as the data migrations make them."""
    ensure_staff_groups()


def make_staff(username: str, *groups: str, **flags: Any) -> User:
    """A staff user in `groups` (no permissions of their own)."""
    user = User.objects.create_user(username=username, password="irrelevant", is_staff=True, **flags)
    for name in groups:
        user.groups.add(Group.objects.get(name=name))
    return user


@pytest.fixture
def finance(staff_groups: None) -> Client:
    """A logged-in admin client of a Finance user (username `fiona`)."""
    client = Client()
    client.force_login(make_staff("fiona", "Finance"))
    return client


@pytest.fixture
def support(staff_groups: None) -> Client:
    """A logged-in admin client of a Support user (username `sam`)."""
    client = Client()
    client.force_login(make_staff("sam", "Support"))
    return client


@pytest.fixture
def superuser(db: None) -> Client:
    """A logged-in admin client of a superuser."""
    client = Client()
    client.force_login(make_staff("root", is_superuser=True))
    return client


@pytest.fixture
def fraud_defaults(db: None) -> None:
    """The default fraud configuration, as seeded by fraud/migrations/0002_default_rules.py."""
    defaults.seed(django_apps)


@pytest.fixture
def own_acquirer(settings: Any, tmp_path: Path) -> Iterator[Acquirer]:
    """A sandbox acquirer with an empty book, so its settlement report holds only this test's captures."""
    running = start_acquirer(tmp_path / "own-acquirer.sqlite3")
    settings.PROCESSORS = processor_settings(running.url)
    get_processor.cache_clear()
    yield running
    running.server.shutdown()
    running.server.server_close()
    get_processor.cache_clear()


def drain_only(subscriber: str, *, max_rounds: int = 50) -> int:
    """Handle due outbox rows of `subscriber` only, until none is left; other subscribers' rows stay pending
    (claimed rows of theirs are put back at once). Returns rows handled."""
    from django.db.models import F

    from config.platform.outbox.models import OutboxMessage

    handled = 0
    for _ in range(max_rounds):
        rows = outbox.claim(batch_size=100)
        mine = [r for r in rows if r.subscriber == subscriber]
        others = [r.id for r in rows if r.subscriber != subscriber]
        OutboxMessage.objects.filter(id__in=others).update(locked_until=None, attempts=F("attempts") - 1)
        for row in mine:
            outbox.process(row)
        handled += len(mine)
        if not mine:
            break
    return handled


def run_command(name: str, *args: str) -> tuple[int, str]:
    """Run a management command as the CLI would; returns (exit status, stdout)."""
    import io

    out = io.StringIO()
    try:
        call_command(name, *args, stdout=out)
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue()
    return 0, out.getvalue()
