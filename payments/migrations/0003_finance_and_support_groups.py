"""Data migration: the "Finance" and "Support" staff groups with the payments and ledger permissions
(config.platform.staff_groups). Fraud, reconciliation and webhooks add theirs from their own migrations."""

from django.db import migrations

from config.platform.staff_groups import FINANCE, SUPPORT, grant_permissions, revoke_permissions, view_permissions


def _grants(apps):
    # Idempotency keys are plumbing (stored API responses), not something staff look at.
    views = [p for p in view_permissions(apps, "payments") if p != "payments.view_idempotencykey"]
    views += view_permissions(apps, "ledger")
    return {
        FINANCE: [*views, "payments.void_payment", "payments.release_hold"],
        SUPPORT: views,
    }


def forwards(apps, schema_editor):
    grant_permissions(apps, _grants(apps))


def backwards(apps, schema_editor):
    revoke_permissions(apps, _grants(apps))


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("ledger", "0001_initial"),
        ("payments", "0002_card_fingerprint_capture_reference_holds_audit"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
