"""The outbox moves here from the payments app. State only: the table payments_outboxmessage, its rows and its
indexes stay where they are; the content type follows."""

from django.db import migrations, models

from config.platform.staff_groups import content_types_move


MODELS = ["outboxmessage"]


def _rename_content_types(apps, schema_editor):
    content_types_move(apps, models=MODELS, from_label="payments", to_label="outbox")


def _restore_content_types(apps, schema_editor):
    content_types_move(apps, models=MODELS, from_label="outbox", to_label="payments")


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
                    name="OutboxMessage",
                    fields=[
                        ("id", models.BigAutoField(primary_key=True, serialize=False)),
                        ("topic", models.CharField(max_length=64)),
                        ("subscriber", models.CharField(max_length=64)),
                        ("key", models.CharField(max_length=64)),
                        ("payload", models.JSONField(default=dict)),
                        (
                            "status",
                            models.CharField(
                                choices=[("pending", "Pending"), ("done", "Done"), ("dead", "Dead")],
                                default="pending",
                                max_length=8,
                            ),
                        ),
                        ("attempts", models.PositiveIntegerField(default=0)),
                        ("available_at", models.DateTimeField()),
                        ("locked_until", models.DateTimeField(blank=True, null=True)),
                        ("claim_token", models.CharField(blank=True, max_length=32)),
                        ("last_error", models.TextField(blank=True)),
                        ("request_id", models.CharField(blank=True, max_length=64)),
                        ("created_at", models.DateTimeField()),
                        ("processed_at", models.DateTimeField(blank=True, null=True)),
                    ],
                    options={
                        "db_table": "payments_outboxmessage",
                        "indexes": [
                            models.Index(
                                condition=models.Q(("status", "pending")), fields=["id"], name="outbox_pending_id"
                            ),
                            models.Index(
                                condition=models.Q(("status", "pending")),
                                fields=["available_at"],
                                name="outbox_pending_due",
                            ),
                            models.Index(fields=["key"], name="outbox_key"),
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(_rename_content_types, _restore_content_types),
    ]
