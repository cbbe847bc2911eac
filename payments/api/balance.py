"""Balance endpoints under /v1: the merchant's ledger balances and ledger movements (thin: ledger selectors →
render). A merchant sees only its own accounts, in the mode of its API key (`test` or `live`).

Amounts are integers in minor units of their ISO 4217 currency. Signs are from the merchant's point of view:
positive means Clearhouse owes the merchant more (the merchant's accounts are liabilities, credit-normal).
"""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from config.platform.http import openapi as shared_openapi
from config.platform.http.base import MerchantAPIView
from config.platform.http.pagination import DEFAULT_LIMIT, MAX_LIMIT, PAGING_PARAMS
from config.platform.http.problems import ValidationProblem
from config.platform.http.rendering import iso
from ledger import selectors as ledger_selectors
from ledger.contracts import AccountPurpose, Balance, Movement
from payments.api import openapi
from payments.ledger_refs import merchant_owner

#: Public id of a balance transaction: `btx_` + the ledger transaction id.
BTX_PREFIX = "btx_"
_BTX_ID = re.compile(r"^btx_([1-9][0-9]{0,18})$")


def _owner(request: Request) -> str:
    return merchant_owner(merchant_id=request.user.merchant.pk, mode=request.user.mode)


def _account(balance: Balance | None) -> dict[str, int]:
    if balance is None:
        return {"posted": 0, "pending": 0, "available": 0}
    return {"posted": balance.posted, "pending": balance.pending, "available": balance.available}


def balance_to_dict(*, balances: dict[tuple[str, str], Balance], livemode: bool) -> dict[str, Any]:
    """`GET /v1/balance`'s body: one entry per currency the merchant has accounts in, sorted by currency.

    Per currency (minor units): `available` = the `available` account's available balance (settled, payable:
    posted minus outgoing holds); `pending` = open authorization holds (the pending balance of the merchant's
    accounts: authorized, not captured or voided yet); `unsettled` = captured, not settled yet (the `pending`
    account's posted balance); `reserved` = the `reserve` account's posted balance. `accounts` gives the three
    balances (`posted`, `pending`, `available`) of each of the merchant's accounts.
    """
    currencies = sorted({currency for _, currency in balances})
    rows = []
    for currency in currencies:
        pending_acc = balances.get((AccountPurpose.MERCHANT_PENDING, currency))
        available_acc = balances.get((AccountPurpose.MERCHANT_AVAILABLE, currency))
        reserve_acc = balances.get((AccountPurpose.MERCHANT_RESERVE, currency))
        mine = [b for b in (pending_acc, available_acc, reserve_acc) if b is not None]
        rows.append(
            {
                "currency": currency,
                "available": available_acc.available if available_acc else 0,
                "pending": sum(b.pending for b in mine),
                "unsettled": pending_acc.posted if pending_acc else 0,
                "reserved": reserve_acc.posted if reserve_acc else 0,
                "accounts": {
                    "available": _account(available_acc),
                    "pending": _account(pending_acc),
                    "reserve": _account(reserve_acc),
                },
            }
        )
    return {"object": "balance", "livemode": livemode, "balances": rows}


def _source(reference: str) -> str | None:
    kind, _, object_id = reference.partition(":")
    return object_id if kind == "payment" and object_id else None


def balance_transaction_to_dict(*, movements: list[Movement], livemode: bool) -> dict[str, Any]:
    """One balance transaction: a ledger transaction as it moved the merchant's balances.

    `amount` (gross) = `net` + `fee`; `net` = the change of the merchant's posted balances; `fee` = what the
    platform earned in the same ledger transaction; `pending` = the change of the merchant's held (pending)
    balance (+ for a new hold, − when a hold is captured or released). `lines` gives each account's change.
    A ledger transaction touching the merchant in several currencies (none does today) shows `currency`,
    `amount`, `fee`, `net` and `pending` as null and one line per account and currency.
    """
    first = movements[0]
    single = len(movements) == 1
    return {
        "id": f"{BTX_PREFIX}{first.transaction_id}",
        "object": "balance_transaction",
        "type": first.code,
        "kind": first.kind,
        "reference": first.reference,
        "source": _source(first.reference),
        "description": first.description or None,
        "currency": first.currency if single else None,
        "amount": first.amount if single else None,
        "fee": first.fee if single else None,
        "net": first.net if single else None,
        "pending": first.pending if single else None,
        "lines": [
            {"account": line.purpose, "currency": line.currency, "posted": line.posted, "pending": line.pending}
            for m in movements
            for line in m.lines
        ],
        "livemode": livemode,
        "created": iso(first.created_at),
    }


def _cursor(params: Any, name: str, errors: list[dict[str, str]]) -> int | None:
    raw = params.get(name)
    if not raw:
        return None
    match = _BTX_ID.match(raw)
    if match is None:
        errors.append({"field": name, "code": "invalid", "detail": "Must be a balance transaction id (btx_…)."})
        return None
    return int(match.group(1))


def paginate_balance_transactions(request: Request, *, owner: str, livemode: bool) -> dict[str, Any]:
    """One page of the owner's balance transactions, newest first (config.platform.http.pagination's rules and shape).

    Query parameters: `limit` (1–100, default 10), `starting_after` or `ending_before` (a `btx_…` id).
    Raises ValidationProblem (400 `validation_error`) for bad parameters.
    """
    params = request.query_params
    errors: list[dict[str, str]] = []
    try:
        limit = int(params.get("limit", DEFAULT_LIMIT))
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError
    except ValueError:
        errors.append({"field": "limit", "code": "invalid", "detail": f"limit must be an integer 1–{MAX_LIMIT}."})
        limit = DEFAULT_LIMIT
    after, before = _cursor(params, "starting_after", errors), _cursor(params, "ending_before", errors)
    if after and before:
        errors.append(
            {"field": "starting_after", "code": "invalid", "detail": "Use starting_after or ending_before, not both."}
        )
    if errors:
        raise ValidationProblem(errors)
    page = ledger_selectors.transaction_page_for_owner(
        owner=owner, limit=limit, starting_after=after, ending_before=before
    )
    movements = ledger_selectors.movements_for_owner(owner=owner, transaction_ids=page.ids)
    data = [balance_transaction_to_dict(movements=movements[i], livemode=livemode) for i in page.ids if i in movements]
    return {"object": "list", "url": request.path, "has_more": page.has_more, "data": data}


class BalanceView(MerchantAPIView):
    """`GET /v1/balance`: the merchant's balances per currency (see `balance_to_dict`), in its key's mode."""

    @extend_schema(
        operation_id="balance_retrieve",
        summary="Retrieve your balance",
        tags=["Balance"],
        responses={
            200: OpenApiResponse(openapi.BalanceSerializer, description="Your balances per currency."),
            **shared_openapi.problems(*shared_openapi.READ_PROBLEMS),
        },
    )
    def get(self, request: Request) -> Response:
        """200 `{"object": "balance", "livemode", "balances": [{"currency", "available", "pending", "unsettled",
        "reserved", "accounts"}]}`; minor units. Errors: 401."""
        balances = ledger_selectors.balances_for_owner(owner=_owner(request))
        return Response(balance_to_dict(balances=balances, livemode=request.user.mode == "live"))


class BalanceTransactionListView(MerchantAPIView):
    """`GET /v1/balance_transactions`: the merchant's ledger movements, newest first, with fee and net."""

    query_params = {"GET": PAGING_PARAMS}

    @extend_schema(
        operation_id="balance_transactions_list",
        summary="List balance transactions",
        tags=["Balance"],
        parameters=[
            OpenApiParameter(
                "limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}, description="Page size, 1–100."
            ),
            OpenApiParameter(
                "starting_after",
                {"type": "string", "pattern": r"^btx_[1-9][0-9]{0,18}$"},
                description="A `btx_…` id: the page of older movements after it.",
            ),
            OpenApiParameter(
                "ending_before",
                {"type": "string", "pattern": r"^btx_[1-9][0-9]{0,18}$"},
                description="A `btx_…` id: the page of newer movements before it.",
            ),
        ],
        responses={
            200: OpenApiResponse(openapi.BalanceTransactionListSerializer, description="A page of movements."),
            **shared_openapi.problems(*shared_openapi.READ_PROBLEMS),
        },
    )
    def get(self, request: Request) -> Response:
        """200 list of balance transactions (`balance_transaction_to_dict`), cursor paging (`limit`,
        `starting_after`, `ending_before`, `has_more`). Errors: 400 `validation_error`, 401."""
        page = paginate_balance_transactions(request, owner=_owner(request), livemode=request.user.mode == "live")
        return Response(page)
