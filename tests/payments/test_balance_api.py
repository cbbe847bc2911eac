"""`GET /v1/balance` and `GET /v1/balance_transactions`: holds show as pending, captures as unsettled, settled
funds as available; each movement has a fee and a net; a merchant sees only its own, in its key's mode."""

from __future__ import annotations

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from config.platform.merchants.services import api_key_create
from ledger import services as ledger_services
from ledger.contracts import AccountPurpose, AccountRef, Leg, Side
from payments.ledger_refs import merchant_owner, platform_owner
from tests.conftest import MerchantClient, drain_outbox, payment_body

pytestmark = pytest.mark.django_db(transaction=True)


def ref(api: MerchantClient, purpose: AccountPurpose, currency: str = "EUR") -> AccountRef:
    return AccountRef(
        owner=merchant_owner(merchant_id=api.merchant.pk, mode="test"), purpose=purpose, currency=currency
    )


def platform(purpose: AccountPurpose, currency: str = "EUR") -> AccountRef:
    return AccountRef(owner=platform_owner(mode="test"), purpose=purpose, currency=currency)


def settle(api: MerchantClient, amount: int, key: str = "settle-1") -> None:
    """A settlement as docs/ledger.md defines it: Dr merchant pending / Cr merchant available."""
    with transaction.atomic():
        ledger_services.transaction_post(
            code="settlement",
            reference=key,
            idempotency_key=key,
            legs=[
                Leg(account=ref(api, AccountPurpose.MERCHANT_PENDING), side=Side.DEBIT, amount=amount),
                Leg(account=ref(api, AccountPurpose.MERCHANT_AVAILABLE), side=Side.CREDIT, amount=amount),
            ],
        )


def charge_fee(api: MerchantClient, amount: int, key: str = "fee-1") -> None:
    """A platform fee: Dr merchant available / Cr platform fees."""
    with transaction.atomic():
        ledger_services.transaction_post(
            code="fee",
            reference=key,
            idempotency_key=key,
            legs=[
                Leg(account=ref(api, AccountPurpose.MERCHANT_AVAILABLE), side=Side.DEBIT, amount=amount),
                Leg(account=platform(AccountPurpose.FEES), side=Side.CREDIT, amount=amount),
            ],
        )


def authorized_payment(api: MerchantClient, amount: int = 5000, currency: str = "EUR") -> str:
    payment_id = api.post(
        "/v1/payments", payment_body(amount=amount, currency=currency, capture_method="manual")
    ).json()["id"]
    drain_outbox()
    return payment_id


def eur(body: dict) -> dict:
    (row,) = [b for b in body["balances"] if b["currency"] == "EUR"]
    return row


def test_a_hold_is_pending_a_capture_unsettled_and_a_settlement_available(api: MerchantClient) -> None:
    assert api.get("/v1/balance").json() == {"object": "balance", "livemode": False, "balances": []}
    payment_id = authorized_payment(api, 5000)

    body = api.get("/v1/balance").json()
    assert {k: eur(body)[k] for k in ("available", "pending", "unsettled", "reserved")} == {
        "available": 0,
        "pending": 5000,
        "unsettled": 0,
        "reserved": 0,
    }
    assert eur(body)["accounts"]["pending"] == {"posted": 0, "pending": 5000, "available": 0}

    assert api.post(f"/v1/payments/{payment_id}/capture", {"amount_to_capture": 4000}).status_code == 202
    drain_outbox()
    row = eur(api.get("/v1/balance").json())
    assert (row["available"], row["pending"], row["unsettled"]) == (0, 0, 4000)

    settle(api, 4000)
    charge_fee(api, 120)
    row = eur(api.get("/v1/balance").json())
    assert (row["available"], row["pending"], row["unsettled"]) == (3880, 0, 0)
    assert row["accounts"]["available"] == {"posted": 3880, "pending": 0, "available": 3880}


def test_balance_transactions_list_movements_newest_first_with_fee_and_net(api: MerchantClient) -> None:
    payment_id = authorized_payment(api, 5000)
    api.post(f"/v1/payments/{payment_id}/capture", {"amount_to_capture": 4000})
    drain_outbox()
    settle(api, 4000)
    charge_fee(api, 120)

    page = api.get("/v1/balance_transactions").json()
    assert page["object"] == "list" and page["has_more"] is False
    rows = page["data"]
    assert [r["type"] for r in rows] == ["fee", "settlement", "capture", "authorization_hold"]
    fee, settlement, capture, hold = rows
    assert {k: hold[k] for k in ("amount", "fee", "net", "pending", "currency", "source", "kind")} == {
        "amount": 0,
        "fee": 0,
        "net": 0,
        "pending": 5000,
        "currency": "EUR",
        "source": payment_id,
        "kind": "pending",
    }
    assert (capture["amount"], capture["fee"], capture["net"], capture["pending"]) == (4000, 0, 4000, -5000)
    assert (settlement["amount"], settlement["net"]) == (0, 0)
    assert sorted((line["account"], line["posted"]) for line in settlement["lines"]) == [
        ("available", 4000),
        ("pending", -4000),
    ]
    assert (fee["amount"], fee["fee"], fee["net"]) == (0, 120, -120)
    assert all(r["id"].startswith("btx_") and r["object"] == "balance_transaction" for r in rows)
    assert all(r["amount"] == r["net"] + r["fee"] for r in rows)


def test_a_posting_that_credits_the_merchant_net_of_a_fee_shows_gross_fee_and_net(api: MerchantClient) -> None:
    with transaction.atomic():
        ledger_services.transaction_post(
            code="capture",
            reference="payment:pay_x",
            idempotency_key="gross-net",
            legs=[
                Leg(account=platform(AccountPurpose.PROCESSOR_RECEIVABLE), side=Side.DEBIT, amount=2599),
                Leg(account=ref(api, AccountPurpose.MERCHANT_PENDING), side=Side.CREDIT, amount=2494),
                Leg(account=platform(AccountPurpose.FEES), side=Side.CREDIT, amount=105),
            ],
        )
    (row,) = api.get("/v1/balance_transactions").json()["data"]
    assert (row["amount"], row["fee"], row["net"], row["source"]) == (2599, 105, 2494, "pay_x")


def test_a_merchant_sees_only_its_own_balances_and_movements_in_its_keys_mode(
    api: MerchantClient, other_api: MerchantClient
) -> None:
    authorized_payment(api, 5000)
    authorized_payment(other_api, 700, currency="JPY")

    assert [b["currency"] for b in other_api.get("/v1/balance").json()["balances"]] == ["JPY"]
    assert eur(api.get("/v1/balance").json())["pending"] == 5000
    mine = api.get("/v1/balance_transactions").json()["data"]
    theirs = other_api.get("/v1/balance_transactions").json()["data"]
    assert len(mine) == len(theirs) == 1 and mine[0]["id"] != theirs[0]["id"]
    # A cursor naming another merchant's movement reveals nothing of it.
    page = api.get("/v1/balance_transactions", ending_before=f"btx_{int(mine[0]['id'][4:]) - 1}").json()
    assert [r["id"] for r in page["data"]] == [mine[0]["id"]]

    _, live_key = api_key_create(merchant=api.merchant, mode="live")
    live = APIClient()
    live.credentials(HTTP_AUTHORIZATION=f"Bearer {live_key}")
    assert live.get("/v1/balance").json() == {"object": "balance", "livemode": True, "balances": []}
    assert live.get("/v1/balance_transactions").json()["data"] == []


def test_balance_transactions_page_with_cursors(api: MerchantClient) -> None:
    for i in range(5):
        charge_fee(api, 10 + i, key=f"fee-{i}")
    first = api.get("/v1/balance_transactions", limit=2).json()
    assert first["has_more"] is True and [r["fee"] for r in first["data"]] == [14, 13]
    second = api.get("/v1/balance_transactions", limit=2, starting_after=first["data"][-1]["id"]).json()
    assert [r["fee"] for r in second["data"]] == [12, 11] and second["has_more"] is True
    last = api.get("/v1/balance_transactions", limit=2, starting_after=second["data"][-1]["id"]).json()
    assert [r["fee"] for r in last["data"]] == [10] and last["has_more"] is False
    back = api.get("/v1/balance_transactions", limit=2, ending_before=second["data"][0]["id"]).json()
    assert [r["fee"] for r in back["data"]] == [14, 13]


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "x"},
        {"starting_after": "pay_123"},
        {"starting_after": "btx_1", "ending_before": "btx_2"},
    ],
)
def test_bad_paging_parameters_are_a_validation_problem(api: MerchantClient, params: dict[str, str]) -> None:
    response = api.get("/v1/balance_transactions", **params)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "validation_error"


@pytest.mark.parametrize("path", ["/v1/balance", "/v1/balance_transactions"])
def test_balance_endpoints_require_an_api_key(db: None, path: str) -> None:
    response = APIClient().get(path)
    assert response.status_code == 401 and response.json()["code"] == "authentication_required"
