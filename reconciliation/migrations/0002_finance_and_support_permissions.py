"""Data migration: reconciliation's permissions for the "Finance" (read, resolve discrepancies) and "Support"
(read) groups (config.platform.staff_groups)."""

from django.db import migrations

from config.platform.staff_groups import FINANCE, SUPPORT, grant_permissions, revoke_permissions, view_permissions


def _grants(apps):
    views = view_permissions(apps, "reconciliation")
    return {FINANCE: [*views, "reconciliation.resolve_discrepancy"], SUPPORT: views}


def forwards(apps, schema_editor):
    grant_permissions(apps, _grants(apps))


def backwards(apps, schema_editor):
    revoke_permissions(apps, _grants(apps))


class Migration(migrations.Migration):
    dependencies = [
        ("reconciliation", "0001_initial"),
        ("payments", "0003_finance_and_support_groups"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
