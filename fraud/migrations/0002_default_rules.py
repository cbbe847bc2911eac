"""Data migration: the default rules, the BIN blocklist entry of the sandbox's `tok_risky` (400020), amount
thresholds and the hold score (fraud.defaults)."""

from django.db import migrations

from fraud import defaults


def forwards(apps, schema_editor):
    defaults.seed(apps)


class Migration(migrations.Migration):
    dependencies = [("fraud", "0001_initial")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
