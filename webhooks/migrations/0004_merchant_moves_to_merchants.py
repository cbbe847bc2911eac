"""The merchant model moved to config.platform.merchants. State only: the foreign key column and its constraint
to payments_merchant stay as they are."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("merchants", "0001_initial"),
        ("webhooks", "0003_delivery_plural_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="webhookendpoint",
                    name="merchant",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="webhook_endpoints",
                        to="merchants.merchant",
                    ),
                ),
            ],
            database_operations=[],
        ),
    ]
