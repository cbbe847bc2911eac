"""Merchants, API keys, idempotency keys and the outbox leave the payments app (for config.platform.merchants,
.idempotency and .outbox). State only: every table, row, index and constraint stays where it is; the foreign keys
to payments_merchant now name merchants.Merchant."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0006_outbox_claim_walks_pending_ids"),
        ("merchants", "0001_initial"),
        ("idempotency", "0001_initial"),
        ("outbox", "0001_initial"),
        ("webhooks", "0004_merchant_moves_to_merchants"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="payment",
                    name="merchant",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="payments", to="merchants.merchant"
                    ),
                ),
                migrations.AlterField(
                    model_name="refund",
                    name="merchant",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="refunds", to="merchants.merchant"
                    ),
                ),
                migrations.AlterField(
                    model_name="event",
                    name="merchant",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="events", to="merchants.merchant"
                    ),
                ),
                migrations.DeleteModel(name="OutboxMessage"),
                migrations.DeleteModel(name="IdempotencyKey"),
                migrations.DeleteModel(name="ApiKey"),
                migrations.DeleteModel(name="Merchant"),
            ],
            database_operations=[],
        ),
    ]
