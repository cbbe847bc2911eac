"""Data migration: fraud's permissions for the "Finance" (edit rules, lists, thresholds) and "Support" (read)
groups (config.platform.staff_groups)."""

from django.db import migrations

from config.platform.staff_groups import FINANCE, SUPPORT, grant_permissions, revoke_permissions, view_permissions

EDITABLE = ("rule", "listentry", "amountthreshold", "ipcountryrange", "scoringsettings")
DELETABLE = ("listentry", "amountthreshold", "ipcountryrange")


def _grants(apps):
    views = view_permissions(apps, "fraud")
    finance = [*views]
    finance += [f"fraud.{action}_{model}" for model in EDITABLE for action in ("add", "change")]
    finance += [f"fraud.delete_{model}" for model in DELETABLE]
    return {FINANCE: finance, SUPPORT: views}


def forwards(apps, schema_editor):
    grant_permissions(apps, _grants(apps))


def backwards(apps, schema_editor):
    revoke_permissions(apps, _grants(apps))


class Migration(migrations.Migration):
    dependencies = [
        ("fraud", "0002_default_rules"),
        ("payments", "0003_finance_and_support_groups"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
