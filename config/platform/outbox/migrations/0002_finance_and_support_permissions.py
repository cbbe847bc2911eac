"""Data migration: read access to the outbox app's models for the "Finance" and "Support" groups
(config.platform.staff_groups). Databases made before the move already have it (their permissions moved with the
content types in 0001); granting again changes nothing there."""

from django.db import migrations

from config.platform.staff_groups import FINANCE, SUPPORT, grant_permissions, revoke_permissions, view_permissions


def _grants(apps):
    views = view_permissions(apps, "outbox")
    return {FINANCE: views, SUPPORT: views}


def forwards(apps, schema_editor):
    grant_permissions(apps, _grants(apps))


def backwards(apps, schema_editor):
    revoke_permissions(apps, _grants(apps))


class Migration(migrations.Migration):
    dependencies = [
        ("outbox", "0001_initial"),
        ("payments", "0003_finance_and_support_groups"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
