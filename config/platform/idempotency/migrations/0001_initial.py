"""Idempotency keys move here from the payments app. State only: the table payments_idempotencykey and its rows
stay where they are; the content type follows."""

import django.db.models.deletion
from django.db import migrations, models

from config.platform.staff_groups import content_types_move


MODELS = ["idempotencykey"]


def _rename_content_types(apps, schema_editor):
    content_types_move(apps, models=MODELS, from_label="payments", to_label="idempotency")


def _restore_content_types(apps, schema_editor):
    content_types_move(apps, models=MODELS, from_label="idempotency", to_label="payments")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("payments", "0006_outbox_claim_walks_pending_ids"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("merchants", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="IdempotencyKey",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("mode", models.CharField(choices=[("test", "Test"), ("live", "Live")], max_length=4)),
                        ("key", models.CharField(max_length=255)),
                        ("method", models.CharField(max_length=8)),
                        ("path", models.CharField(max_length=255)),
                        ("fingerprint", models.CharField(max_length=64)),
                        (
                            "recovery_point",
                            models.CharField(
                                choices=[
                                    ("started", "Started"),
                                    ("object_created", "Object Created"),
                                    ("finished", "Finished"),
                                ],
                                default="started",
                                max_length=16,
                            ),
                        ),
                        ("locked_until", models.DateTimeField(blank=True, null=True)),
                        ("lock_token", models.CharField(blank=True, max_length=32)),
                        ("object_type", models.CharField(blank=True, max_length=32)),
                        ("object_id", models.CharField(blank=True, max_length=40)),
                        ("response_status", models.PositiveSmallIntegerField(blank=True, null=True)),
                        ("response_body", models.BinaryField(blank=True, null=True)),
                        ("response_content_type", models.CharField(blank=True, max_length=64)),
                        ("created_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                        ("updated_at", models.DateTimeField(auto_now=True)),
                        (
                            "merchant",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE, related_name="+", to="merchants.merchant"
                            ),
                        ),
                    ],
                    options={
                        "db_table": "payments_idempotencykey",
                        "constraints": [
                            models.UniqueConstraint(fields=("merchant", "mode", "key"), name="idempotency_key_unique"),
                            models.CheckConstraint(
                                condition=models.Q(
                                    models.Q(("recovery_point", "finished"), _negated=True),
                                    ("response_status__isnull", False),
                                    _connector="OR",
                                ),
                                name="idempotency_key_finished_has_response",
                            ),
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(_rename_content_types, _restore_content_types),
    ]
