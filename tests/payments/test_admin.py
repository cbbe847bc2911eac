"""The admin for finance staff, through Django's test client: the payment page with every related
record, the hold queue, void / release / void-held with a permission and a typed reason (same services as the
API, audited), read-only ledger and outbox, dead-letter replay, and the Finance / Support groups."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client

from config.platform.outbox.models import OutboxMessage
from fraud.models import ListEntry
from ledger.models import Account, LedgerTransaction
from payments.models import AuditRecord, Event, Payment, SettlementHold, SettlementHoldStatus
from tests.conftest import MerchantClient, drain_outbox, payment_body
from tests.operators import make_staff, run_command

pytestmark = pytest.mark.django_db(transaction=True)

VOID = "/admin/payments/payment/{}/void/"
RELEASE = "/admin/payments/payment/{}/release-hold/"
VOID_HELD = "/admin/payments/payment/{}/void-held/"


def pay(api: MerchantClient, **overrides) -> str:
    response = api.post("/v1/payments", payment_body(**overrides))
    assert response.status_code == 202, response.content
    payment_id = response.json()["id"]
    drain_outbox()
    return payment_id


def page(client: Client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.content.decode()


def test_a_held_tok_risky_payment_is_in_the_hold_queue_with_the_rules_that_fired(
    api: MerchantClient, fraud_defaults, finance: Client
):
    held = pay(api, payment_method="tok_risky")
    ordinary = pay(api)

    queue = page(finance, "/admin/payments/settlementhold/")
    assert held in queue and ordinary not in queue
    assert "BIN blocklist +100" in queue and "BIN 400020 matches blocklisted 400020" in queue

    on_hold = page(finance, "/admin/payments/payment/?hold=active")
    assert held in on_hold and ordinary not in on_hold

    detail = page(finance, f"/admin/payments/payment/{held}/change/")
    assert "Fraud result: score 100, hold" in detail and "BIN blocklist" in detail
    assert RELEASE.format(held) in detail  # Finance may release it


def test_the_payment_page_shows_ledger_entries_outbox_events_fraud_result_and_webhook_attempts(
    api: MerchantClient, fraud_defaults, support: Client
):
    api.post("/v1/webhook_endpoints", {"url": "http://127.0.0.1:9/hooks", "enabled_events": ["*"]})
    payment_id = pay(api)
    assert OutboxMessage.objects.filter(subscriber="webhooks.deliver").exists()

    detail = page(support, f"/admin/payments/payment/{payment_id}/change/")

    # events (inline) and the outbox rows keyed by the payment
    for event_type in ("payment.created", "payment.authorized", "payment.captured"):
        assert event_type in detail
    assert "payments.processor" in detail and "fraud.score" in detail and "webhooks.fanout" in detail
    # ledger entries: the authorization hold and the capture, both sides
    assert "Ledger entries" in detail and "authorization_hold" in detail and "post_pending" in detail
    assert f"test:merchant:{api.merchant.pk} pending" in detail and "test:platform processor_receivable" in detail
    # the fraud result, and the webhook attempts (the endpoint refuses connections)
    assert "Fraud result: score 0, allow" in detail
    assert "Webhook delivery attempts" in detail and "http://127.0.0.1:9/hooks" in detail
    assert "ConnectionError" in detail
    # Support sees no staff actions
    assert "/void/" not in detail and "/release-hold/" not in detail


def test_finance_voids_an_authorized_payment_with_a_reason_and_ledger_events_and_audit_show_it(
    api: MerchantClient, finance: Client
):
    payment_id = pay(api, capture_method="manual")
    assert VOID.format(payment_id) in page(finance, f"/admin/payments/payment/{payment_id}/change/")

    response = finance.post(
        VOID.format(payment_id), {"reason": "Customer called: duplicate order", "void_reason": "duplicate"}
    )
    assert response.status_code == 302 and response["Location"] == f"/admin/payments/payment/{payment_id}/change/"

    payment = Payment.objects.get(pk=payment_id)
    assert (payment.status, payment.void_reason) == ("voiding", "duplicate")
    audit = AuditRecord.objects.get(payment_id=payment_id)
    assert (audit.actor, audit.action, audit.reason) == ("fiona", "payment.void", "Customer called: duplicate order")
    assert audit.actor_id is not None

    drain_outbox()
    assert Payment.objects.get(pk=payment_id).status == "voided"
    assert list(
        LedgerTransaction.objects.filter(reference=f"payment:{payment_id}")
        .order_by("id")
        .values_list("code", flat=True)
    ) == ["authorization_hold", "void_release"]
    assert Event.objects.filter(payment_id=payment_id, type="payment.voided").count() == 1
    detail = page(finance, f"/admin/payments/payment/{payment_id}/change/")
    assert "void_release" in detail and "Customer called: duplicate order" in detail


def test_a_void_without_a_reason_is_refused_and_changes_nothing(api: MerchantClient, finance: Client):
    payment_id = pay(api, capture_method="manual")

    response = finance.post(VOID.format(payment_id), {"reason": "   ", "void_reason": ""})

    assert response.status_code == 400 and "This field is required" in response.content.decode()
    assert Payment.objects.get(pk=payment_id).status == "authorized"
    assert not AuditRecord.objects.exists()
    assert not OutboxMessage.objects.filter(key=payment_id, topic="payments.void").exists()


def test_voiding_a_captured_payment_shows_the_state_error_and_changes_nothing(api: MerchantClient, finance: Client):
    payment_id = pay(api)

    response = finance.post(VOID.format(payment_id), {"reason": "try anyway"})

    assert response.status_code == 400 and "is captured; it does not allow request void" in response.content.decode()
    assert Payment.objects.get(pk=payment_id).status == "captured" and not AuditRecord.objects.exists()


def test_support_cannot_void_release_or_replay(api: MerchantClient, fraud_defaults, support: Client):
    payment_id = pay(api, payment_method="tok_risky", capture_method="manual")
    message = OutboxMessage.objects.filter(key=payment_id).first()
    OutboxMessage.objects.filter(pk=message.pk).update(status="dead")

    assert (
        "Void"
        not in re.findall(
            r'<ul class="object-tools">(.*?)</ul>', page(support, f"/admin/payments/payment/{payment_id}/change/"), re.S
        )[0]
    )
    for url in (VOID.format(payment_id), RELEASE.format(payment_id), VOID_HELD.format(payment_id)):
        assert support.get(url).status_code == 403
        assert support.post(url, {"reason": "I should not", "void_reason": ""}).status_code == 403
    assert support.post(f"/admin/outbox/outboxmessage/{message.pk}/replay/", {"reason": "no"}).status_code == 403

    assert Payment.objects.get(pk=payment_id).status == "authorized"
    assert SettlementHold.objects.get(payment_id=payment_id).status == SettlementHoldStatus.ACTIVE
    assert OutboxMessage.objects.get(pk=message.pk).status == "dead"
    assert not AuditRecord.objects.exists()


def test_a_staff_user_without_permissions_sees_nothing(api: MerchantClient, staff_groups):
    payment_id = pay(api, capture_method="manual")
    client = Client()
    client.force_login(make_staff("nobody"))

    index = page(client, "/admin/")
    assert "have permission to view or edit anything" in index and "/admin/payments/" not in index
    for url in (
        "/admin/payments/payment/",
        f"/admin/payments/payment/{payment_id}/change/",
        "/admin/ledger/ledgertransaction/",
        "/admin/payments/settlementhold/",
        "/admin/reconciliation/discrepancy/",
        "/admin/fraud/rule/",
    ):
        assert client.get(url).status_code == 403, url
    assert client.post(VOID.format(payment_id), {"reason": "x"}).status_code == 403
    assert Payment.objects.get(pk=payment_id).status == "authorized"


def test_finance_releases_a_hold_with_an_audited_reason(api: MerchantClient, fraud_defaults, finance: Client):
    payment_id = pay(api, payment_method="tok_risky")

    response = finance.post(RELEASE.format(payment_id), {"reason": "Known customer, verified by phone"})

    assert response.status_code == 302
    assert "was released" in page(finance, response["Location"])
    hold = SettlementHold.objects.get(payment_id=payment_id)
    assert (hold.status, hold.ended_by, hold.end_reason) == ("released", "fiona", "Known customer, verified by phone")
    audit = AuditRecord.objects.get(payment_id=payment_id)
    assert (audit.action, audit.object_id, audit.actor) == ("payment.hold_release", hold.pk, "fiona")
    assert Event.objects.filter(payment_id=payment_id, type="payment.hold_released").count() == 1
    assert api.get(f"/v1/payments/{payment_id}").json()["hold"]["status"] == "released"
    assert payment_id not in page(finance, "/admin/payments/settlementhold/")

    again = finance.post(RELEASE.format(payment_id), {"reason": "twice"})
    assert again.status_code == 400 and "no active hold" in again.content.decode()
    assert AuditRecord.objects.count() == 1


def test_finance_voids_a_held_payment_and_its_hold_becomes_voided(api: MerchantClient, fraud_defaults, finance: Client):
    payment_id = pay(api, payment_method="tok_risky", capture_method="manual")
    assert VOID_HELD.format(payment_id) in page(finance, f"/admin/payments/payment/{payment_id}/change/")

    response = finance.post(VOID_HELD.format(payment_id), {"reason": "Stolen card", "void_reason": ""})

    assert response.status_code == 302
    assert SettlementHold.objects.get(payment_id=payment_id).status == SettlementHoldStatus.VOIDED
    payment = Payment.objects.get(pk=payment_id)
    assert (payment.status, payment.void_reason) == ("voiding", "fraudulent")
    assert AuditRecord.objects.get(payment_id=payment_id).action == "payment.held_void"
    drain_outbox()
    assert Payment.objects.get(pk=payment_id).status == "voided"


def test_nothing_in_the_admin_edits_or_deletes_payments_ledger_entries_events_or_audit(
    api: MerchantClient, fraud_defaults, superuser: Client, finance: Client
):
    payment_id = pay(api, payment_method="tok_risky")
    finance.post(RELEASE.format(payment_id), {"reason": "ok"})
    objects = {
        "payments/payment": payment_id,
        "payments/settlementhold": SettlementHold.objects.get(payment_id=payment_id).pk,
        "outbox/outboxmessage": OutboxMessage.objects.filter(key=payment_id).first().pk,
        "payments/auditrecord": AuditRecord.objects.get().pk,
        "merchants/merchant": api.merchant.pk,
        "ledger/ledgertransaction": LedgerTransaction.objects.filter(reference=f"payment:{payment_id}").first().pk,
        "ledger/account": Account.objects.first().pk,
    }
    counts = (Payment.objects.count(), LedgerTransaction.objects.count(), Event.objects.count())
    for model, pk in objects.items():
        assert superuser.get(f"/admin/{model}/{pk}/delete/").status_code == 403, model
        assert superuser.post(f"/admin/{model}/{pk}/delete/", {"post": "yes"}).status_code == 403, model
        assert superuser.post(f"/admin/{model}/{pk}/change/", {}).status_code == 403, model
        view = page(superuser, f"/admin/{model}/{pk}/change/")
        assert 'name="_save"' not in view, model  # read-only pages have no Save button
        changelist = page(superuser, f"/admin/{model}/")
        assert "delete_selected" not in changelist, model
    superuser.post("/admin/payments/payment/", {"action": "delete_selected", "_selected_action": [payment_id]})
    assert (Payment.objects.count(), LedgerTransaction.objects.count(), Event.objects.count()) == counts


def test_a_dead_letter_can_be_inspected_and_replayed_by_a_user_with_the_permission(
    api: MerchantClient, staff_groups, finance: Client
):
    response = api.post("/v1/payments", payment_body())
    payment_id = response.json()["id"]
    row = OutboxMessage.objects.get(key=payment_id, subscriber="payments.processor")
    OutboxMessage.objects.filter(pk=row.pk).update(status="dead", attempts=8, last_error="ProcessorError: boom")
    operator = Client()
    user = make_staff("olga", "Support")
    user.user_permissions.add(*Permission.objects.filter(codename="replay_outbox"))
    operator.force_login(user)

    dead = page(operator, "/admin/outbox/outboxmessage/?status__exact=dead")
    assert f">{row.pk}<" in dead and "ProcessorError: boom" in dead
    detail = page(operator, f"/admin/outbox/outboxmessage/{row.pk}/change/")
    assert "ProcessorError: boom" in detail and f"/admin/outbox/outboxmessage/{row.pk}/replay/" in detail
    assert finance.post(f"/admin/outbox/outboxmessage/{row.pk}/replay/", {"reason": "x"}).status_code == 403

    response = operator.post(f"/admin/outbox/outboxmessage/{row.pk}/replay/", {"reason": "Processor is back"})

    assert response.status_code == 302
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("pending", 0)
    audit = AuditRecord.objects.get(action="outbox.replay")
    assert (audit.actor, audit.object_id, audit.payment_id, audit.reason) == (
        "olga",
        str(row.pk),
        payment_id,
        "Processor is back",
    )
    drain_outbox()
    assert Payment.objects.get(pk=payment_id).status == "captured"


def test_the_payment_list_filters_by_status_merchant_currency_hold_and_searches_references(
    api: MerchantClient, other_api: MerchantClient, fraud_defaults, support: Client
):
    eur = pay(api, metadata={"order_id": "ORDER-7731"})
    usd = pay(api, currency="USD", capture_method="manual")
    held = pay(api, payment_method="tok_risky")
    theirs = pay(other_api)
    psp = Payment.objects.get(pk=eur).psp_reference

    def listed(query: str) -> set[str]:
        content = page(support, f"/admin/payments/payment/?{query}")
        return {p for p in (eur, usd, held, theirs) if p in content}

    assert listed("status__exact=authorized") == {usd}
    assert listed(f"merchant__id__exact={other_api.merchant.pk}") == {theirs}
    assert listed("currency=USD") == {usd}
    assert listed("hold=active") == {held}
    assert listed("hold=none") == {eur, usd, theirs}
    assert listed(f"q={eur}") == {eur}
    assert listed(f"q={psp}") == {eur}
    assert listed("q=ORDER-7731") == {eur}  # the merchant's own reference, from metadata


def test_finance_edits_fraud_lists_and_support_cannot(finance: Client, support: Client):
    ListEntry.objects.filter(value="198.51.100.0/24").delete()
    form = {"list_type": "ip", "value": "198.51.100.9/24", "note": "chargebacks"}

    assert support.post("/admin/fraud/listentry/add/", form).status_code == 403
    response = finance.post("/admin/fraud/listentry/add/", form)

    assert response.status_code == 302
    assert ListEntry.objects.get(list_type="ip", note="chargebacks").value == "198.51.100.0/24"


def test_the_data_migrations_create_the_finance_and_support_groups():
    Group.objects.filter(name__in=["Finance", "Support"]).delete()
    executor = MigrationExecutor(connection)
    executor.migrate([("payments", "0002_card_fingerprint_capture_reference_holds_audit")])  # before the groups
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())  # the group migrations of every app run again

    finance = {f"{p.content_type.app_label}.{p.codename}" for p in Group.objects.get(name="Finance").permissions.all()}
    support = {f"{p.content_type.app_label}.{p.codename}" for p in Group.objects.get(name="Support").permissions.all()}

    assert {"payments.void_payment", "payments.release_hold", "reconciliation.resolve_discrepancy"} <= finance
    assert {"fraud.change_rule", "fraud.add_listentry", "payments.view_payment", "ledger.view_entry"} <= finance
    assert {"webhooks.view_webhookattempt", "fraud.view_fraudresult", "reconciliation.view_discrepancy"} <= finance
    assert "payments.replay_outbox" not in finance
    assert not any(p.split(".")[1].startswith(("delete_payment", "change_payment")) for p in finance)
    assert support and all(p.split(".")[1].startswith("view_") for p in support)
    assert support <= finance


def test_the_settlement_hold_rename_keeps_the_groups_and_users_access_on_an_existing_database(staff_groups):
    executor = MigrationExecutor(connection)
    executor.migrate([("payments", "0007_merchants_idempotency_outbox_move_out")])  # the model was PaymentHold
    old = Permission.objects.get(content_type__app_label="payments", codename="view_paymenthold")
    reader = make_staff("ulla")
    reader.user_permissions.add(old)
    assert {g.name for g in old.group_set.all()} == {"Finance", "Support"}

    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    new = Permission.objects.get(pk=old.pk)
    assert (new.content_type.model, new.codename, new.name) == (
        "settlementhold",
        "view_settlementhold",
        "Can view settlement hold",
    )
    assert new.content_type_id == old.content_type_id and {g.name for g in new.group_set.all()} == {
        "Finance",
        "Support",
    }
    assert not Permission.objects.filter(codename__endswith="_paymenthold").exists()
    assert User.objects.get(pk=reader.pk).has_perm("payments.view_settlementhold")
    assert Permission.objects.filter(content_type__app_label="payments", codename="release_hold").exists()


def test_create_staff_user_makes_a_staff_login_in_the_group(staff_groups):
    code, out = run_command("create_staff_user", "fiona", "--group", "Finance")

    created = json.loads(out)
    user = User.objects.get(username="fiona")
    assert code == 0 and created["group"] == "Finance" and user.is_staff and not user.is_superuser
    assert user.check_password(created["password"]) and user.has_perm("payments.void_payment")
