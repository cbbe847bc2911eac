"""Data migration: after the lifecycle (refunds, key slots) and ledger (balances, seals, verification runs) work
landed, let "Finance" and "Support" see the new models too (config.platform.staff_groups)."""

from django.db import migrations

from config.platform.staff_groups import FINANCE, SUPPORT, grant_permissions, view_permissions


def _grants(apps):
    views = [p for p in view_permissions(apps, "payments") if p != "payments.view_idempotencykey"]
    views += view_permissions(apps, "ledger")
    return {FINANCE: views, SUPPORT: views}


def forwards(apps, schema_editor):
    grant_permissions(apps, _grants(apps))


def backwards(apps, schema_editor):
    pass  # the earlier migrations' grants stay; nothing to take back that they did not give


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0004_merge_holds_and_lifecycle"),
        ("ledger", "0002_balances_seals_and_verification_runs"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
