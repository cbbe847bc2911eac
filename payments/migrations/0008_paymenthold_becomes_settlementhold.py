"""PaymentHold becomes SettlementHold (the review hold that keeps a payment out of settlement; not the issuer's
authorization hold, nor the ledger's pending transaction), and `Payment.holds` becomes `Payment.settlement_holds`.

State only: the table stays payments_paymenthold (Meta.db_table), with its rows, the payment_hold_one_active
constraint, the payment_hold_queue index and the pgtrigger_payment_hold_no_delete_895bc trigger (its PostgreSQL
name is pinned in the model, since pgtrigger would otherwise derive a new one from the new model name).

The content type payments.paymenthold is renamed in place to payments.settlementhold, and its permissions with it
(view_paymenthold → view_settlementhold, …): their ids stay, so the "Finance" and "Support" groups, users given
them directly and the admin's history keep pointing at them. `payments.release_hold` (on AuditRecord) is
untouched.
"""

import django.db.models.deletion
from django.db import migrations, models

ACTIONS = ("add", "change", "delete", "view")


def _rename_content_type(apps, schema_editor, *, old, new, new_verbose_name):
    db = schema_editor.connection.alias
    content_type_model = apps.get_model("contenttypes", "ContentType")
    permission_model = apps.get_model("auth", "Permission")
    content_types = content_type_model.objects.db_manager(db)
    content_type = content_types.filter(app_label="payments", model=old).first()
    if content_type is None:
        return  # nothing created it (yet): post_migrate creates the new content type and its permissions
    if content_types.filter(app_label="payments", model=new).exists():
        raise RuntimeError(
            f"Both content types payments.{old} and payments.{new} exist; the groups' permissions are on the first."
            f" Move them by hand (or delete payments.{new} if nothing uses it), then migrate again."
        )
    content_type.model = new
    content_type.save(update_fields=["model"])
    for action in ACTIONS:
        permission_model.objects.using(db).filter(content_type=content_type, codename=f"{action}_{old}").update(
            codename=f"{action}_{new}", name=f"Can {action} {new_verbose_name}"
        )
    content_types.clear_cache()


def forwards(apps, schema_editor):
    _rename_content_type(
        apps, schema_editor, old="paymenthold", new="settlementhold", new_verbose_name="settlement hold"
    )


def backwards(apps, schema_editor):
    _rename_content_type(apps, schema_editor, old="settlementhold", new="paymenthold", new_verbose_name="payment hold")


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0007_merchants_idempotency_outbox_move_out"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RenameModel(old_name="PaymentHold", new_name="SettlementHold"),
                migrations.AlterModelTable(name="settlementhold", table="payments_paymenthold"),
                migrations.AlterField(
                    model_name="settlementhold",
                    name="payment",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="settlement_holds",
                        to="payments.payment",
                    ),
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(forwards, backwards),
    ]
