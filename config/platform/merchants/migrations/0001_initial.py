"""Merchants and API keys move here from the payments app. State only: the tables (payments_merchant,
payments_apikey) and their rows stay where they are; content types follow, so permissions and groups keep working."""

import config.platform.ids
import django.db.models.deletion
import functools
from django.db import migrations, models

from config.platform.staff_groups import content_types_move


MODELS = ["merchant", "apikey"]


def _rename_content_types(apps, schema_editor):
    content_types_move(apps, models=MODELS, from_label="payments", to_label="merchants")


def _restore_content_types(apps, schema_editor):
    content_types_move(apps, models=MODELS, from_label="merchants", to_label="payments")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("payments", "0006_outbox_claim_walks_pending_ids"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Merchant",
                    fields=[
                        (
                            "id",
                            models.CharField(
                                default=functools.partial(config.platform.ids.new_id, *("mer",), **{}),
                                editable=False,
                                max_length=40,
                                primary_key=True,
                                serialize=False,
                            ),
                        ),
                        ("name", models.CharField(max_length=200)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                    ],
                    options={
                        "db_table": "payments_merchant",
                    },
                ),
                migrations.CreateModel(
                    name="ApiKey",
                    fields=[
                        (
                            "id",
                            models.CharField(
                                default=functools.partial(config.platform.ids.new_id, *("key",), **{}),
                                editable=False,
                                max_length=40,
                                primary_key=True,
                                serialize=False,
                            ),
                        ),
                        ("mode", models.CharField(choices=[("test", "Test"), ("live", "Live")], max_length=4)),
                        ("prefix", models.CharField(max_length=16)),
                        ("key_hash", models.CharField(max_length=64, unique=True)),
                        ("slot", models.PositiveSmallIntegerField(default=1)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("revoked_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "merchant",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="api_keys",
                                to="merchants.merchant",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "payments_apikey",
                        "constraints": [
                            models.CheckConstraint(
                                condition=models.Q(("slot__in", [1, 2])), name="api_key_slot_1_or_2"
                            ),
                            models.UniqueConstraint(
                                condition=models.Q(("revoked_at__isnull", True)),
                                fields=("merchant", "mode", "slot"),
                                name="api_key_two_active_per_mode",
                            ),
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(_rename_content_types, _restore_content_types),
    ]
