"""The sandbox acquirer's resources: tokens, authorizations, their modifications, the settlement report.

Each class is a mixin of :class:`sandbox_acquirer.app.SandboxAcquirer` holding the handlers of one
resource; a handler takes a :class:`~sandbox_acquirer.protocol.Request` (plus the route's
parameters), returns a :class:`~sandbox_acquirer.protocol.Response` or raises
:class:`~sandbox_acquirer.protocol.ApiError`. POST handlers do their writes and
``request.commit_response`` inside one ``request.session.write()``, so the data and the stored
idempotent response commit together. The protocol is described in ``docs/sandbox-acquirer.md``.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, date, datetime, timedelta

from . import cards
from .money import MAX_AMOUNT, currency_exponent, is_valid_amount
from .protocol import CSV_CONTENT_TYPE, MAX_KEY_LENGTH, ApiError, Request, Response, json_response
from .report import batch_number, build_settlement_report
from .store import Session, datetime_to_micros, utc_now

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _require_amount(payload: dict, name: str = "amount") -> int:
    value = payload.get(name)
    if not is_valid_amount(value):
        raise ApiError(422, "invalid_request", f"{name} must be an integer in minor units between 1 and {MAX_AMOUNT}")
    return value  # type: ignore[return-value]


def _require_text(payload: dict, name: str, *, required: bool = True) -> str | None:
    value = payload.get(name)
    if not required and (value is None or value == ""):
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_KEY_LENGTH:
        raise ApiError(
            422, "invalid_request", f"{name} must be a non-empty string of at most {MAX_KEY_LENGTH} characters"
        )
    return value


def _check_currency_matches(payload: dict, currency: str) -> None:
    if "currency" in payload and payload["currency"] != currency:
        raise ApiError(422, "invalid_request", f"currency must be {currency}, the authorization's currency")


def _authorization_payload(row: dict, *, with_state: bool) -> dict:
    payload = {
        "psp_reference": row["psp_reference"],
        "result": row["result"],
        "refusal_reason": row["refusal_reason"],
        "amount": row["amount"],
        "currency": row["currency"],
        "reference": row["reference"],
        "card": {
            "brand": row["brand"],
            "bin": row["bin"],
            "last4": row["last4"],
            "country": row["country"],
            "exp_month": row["exp_month"],
            "exp_year": row["exp_year"],
            "fingerprint": row["fingerprint"],
        },
        "created_at": row["created_at"],
    }
    if with_state:
        payload["state"] = row["state"]
        payload["captured_amount"] = row["captured_amount"]
        payload["refunded_amount"] = row["refunded_amount"]
    return payload


def resolve_token(session: Session, token: str) -> tuple[cards.SandboxCard, int, int]:
    """Return ``(card, exp_month, exp_year)`` for ``token``: a fixed ``tok_*`` token or one issued by
    ``POST /v1/tokens``. Raises :class:`ApiError` 422 ``invalid_token``."""
    card = cards.CARDS_BY_TOKEN.get(token)
    if card is not None:
        return card, cards.FIXED_TOKEN_EXP_MONTH, cards.FIXED_TOKEN_EXP_YEAR
    row = session.get_token(token)
    if row is None or row["card_token"] not in cards.CARDS_BY_TOKEN:
        raise ApiError(422, "invalid_token", "Unknown token")
    return cards.CARDS_BY_TOKEN[row["card_token"]], row["exp_month"], row["exp_year"]


def authorization_for_update(session: Session, psp_reference: str, required_state: str) -> dict:
    """Return the authorization row ``psp_reference`` (dict), which must be in ``required_state``.
    Raises :class:`ApiError` 404 ``not_found`` or 409 ``invalid_state``."""
    row = session.get_authorization(psp_reference)
    if row is None:
        raise ApiError(404, "not_found", "No such authorization")
    if row["state"] != required_state:
        raise ApiError(409, "invalid_state", f"The authorization is {row['state']}, not {required_state}")
    return row


class TokenResource:
    """``POST /v1/tokens``: exchange a test card number for a token."""

    def create_token(self, request: Request) -> Response:
        """``POST /v1/tokens`` ``{"number": str, "exp_month": int 1-12, "exp_year": int, "cvc"?: str}``
        -> 201 ``{"token", "card"}``. Errors (422): ``invalid_request`` (bad field shapes),
        ``invalid_number`` (not a listed test number and not 12-19 digits passing Luhn),
        ``not_a_test_card`` (a valid number that is not a test number). The number is used
        only to pick the test card and compute its fingerprint; it is never stored."""
        payload = request.payload
        number = payload.get("number")
        if not isinstance(number, str):
            raise ApiError(422, "invalid_request", "number must be a string of digits")
        exp_month = payload.get("exp_month")
        exp_year = payload.get("exp_year")
        if type(exp_month) is not int or not 1 <= exp_month <= 12:
            raise ApiError(422, "invalid_request", "exp_month must be an integer from 1 to 12")
        if type(exp_year) is not int or not 2000 <= exp_year <= 2099:
            raise ApiError(422, "invalid_request", "exp_year must be a four-digit year")
        cvc = payload.get("cvc")
        if cvc is not None and not (isinstance(cvc, str) and len(cvc) in (3, 4) and cvc.isascii() and cvc.isdigit()):
            raise ApiError(422, "invalid_request", "cvc must be a string of 3 or 4 digits")
        digits = number.replace(" ", "")
        # The listed test numbers are looked up first: the spec's tok_risky number
        # (4000200000000077) does not pass the Luhn check but must still be accepted.
        card = cards.CARDS_BY_NUMBER.get(digits)
        if card is None:
            if not 12 <= len(digits) <= 19 or not cards.luhn_valid(digits):
                raise ApiError(422, "invalid_number", "The card number is invalid")
            raise ApiError(422, "not_a_test_card", "Only the sandbox test card numbers are accepted")
        with request.session.write():
            token = cards.new_token()
            while request.session.token_exists(token):
                token = cards.new_token()
            request.session.insert_token(token, card.token, exp_month, exp_year, cards.fingerprint(digits))
            return request.commit_response(201, {"token": token, "card": cards.card_details(card, exp_month, exp_year)})


class AuthorizationResource:
    """``POST /v1/authorizations`` and ``GET /v1/authorizations/{psp_reference}``.

    Expects ``slow_seconds`` (float seconds ``tok_timeout`` sleeps) and ``merchant_account`` (the
    default ``merchant_account`` of authorizations) to be set by the subclass.
    """

    slow_seconds: float
    merchant_account: str

    def create_authorization(self, request: Request) -> Response:
        """``POST /v1/authorizations`` ``{"amount": int minor units, "currency": ISO 4217,
        "token", "reference", "merchant_account"?}`` -> 201 with the authorization (``result``
        ``authorised``/``refused``); an absent or empty ``merchant_account`` means the configured one.
        Errors: 422 ``invalid_request`` (amount, currency, reference, merchant_account), 422
        ``invalid_token``, 500 ``internal_error`` for ``tok_processor_error`` (nothing stored).
        ``tok_timeout`` sleeps ``slow_seconds`` first, holding no database lock."""
        payload = request.payload
        amount = _require_amount(payload)
        currency = payload.get("currency")
        if currency_exponent(currency) is None:
            raise ApiError(422, "invalid_request", "currency must be an ISO 4217 code with minor units, e.g. EUR")
        reference = _require_text(payload, "reference")
        merchant_account = _require_text(payload, "merchant_account", required=False) or self.merchant_account
        token = payload.get("token")
        if not isinstance(token, str) or not token:
            raise ApiError(422, "invalid_token", "token is required")
        card, exp_month, exp_year = resolve_token(request.session, token)

        if card.behaviour == cards.PROCESSOR_ERROR:
            raise ApiError(500, "internal_error", "Simulated processor error")
        if card.behaviour == cards.TIMEOUT:
            time.sleep(self.slow_seconds)  # no transaction is open here
        refused = card.behaviour == cards.DECLINE
        details = cards.card_details(card, exp_month, exp_year)

        with request.session.write():
            created_at, created_us = utc_now()
            row = {
                "psp_reference": request.session.new_psp_reference(),
                "reference": reference,
                "merchant_account": merchant_account,
                "amount": amount,
                "currency": currency,
                "token": token,
                **details,
                "result": "refused" if refused else "authorised",
                "refusal_reason": card.refusal_reason if refused else None,
                "state": "refused" if refused else "authorised",
                "created_at": created_at,
                "created_us": created_us,
            }
            request.session.insert_authorization(row)
            return request.commit_response(201, _authorization_payload(row, with_state=False))

    def get_authorization(self, request: Request, psp_reference: str) -> Response:
        """``GET /v1/authorizations/{psp_reference}`` -> 200 with the authorization plus ``state``,
        ``captured_amount`` and ``refunded_amount`` (int minor units). 404 ``not_found``."""
        row = request.session.get_authorization(psp_reference)
        if row is None:
            raise ApiError(404, "not_found", "No such authorization")
        return json_response(200, _authorization_payload(row, with_state=True))


class ModificationResource:
    """Captures, cancels and refunds of an authorization (``POST /v1/authorizations/{psp_reference}/…``)."""

    def create_capture(self, request: Request, psp_reference: str) -> Response:
        """``POST /v1/authorizations/{psp_reference}/captures`` ``{"amount": int minor units}`` -> 201
        capture. One capture per authorization; a partial capture releases the rest. Errors:
        422 ``invalid_request``, 404 ``not_found``, 409 ``invalid_state`` (not ``authorised``),
        422 ``amount_exceeds_authorized``."""
        amount = _require_amount(request.payload)
        session = request.session
        with session.write():
            auth = authorization_for_update(session, psp_reference, "authorised")
            _check_currency_matches(request.payload, auth["currency"])
            if amount > auth["amount"]:
                raise ApiError(422, "amount_exceeds_authorized", "The amount exceeds the authorized amount")
            capture_reference = session.new_psp_reference()
            created_at, created_us = utc_now()
            session.insert_modification(
                capture_reference, psp_reference, "capture", amount, auth["currency"], created_at, created_us
            )
            session.mark_captured(psp_reference, amount)
            return request.commit_response(
                201,
                {
                    "psp_reference": capture_reference,
                    "original_reference": psp_reference,
                    "status": "captured",
                    "amount": amount,
                    "currency": auth["currency"],
                    "created_at": created_at,
                },
            )

    def create_cancel(self, request: Request, psp_reference: str) -> Response:
        """``POST /v1/authorizations/{psp_reference}/cancels`` ``{}`` -> 201 cancel. Errors: 404
        ``not_found``, 409 ``invalid_state`` (not ``authorised``)."""
        session = request.session
        with session.write():
            auth = authorization_for_update(session, psp_reference, "authorised")
            cancel_reference = session.new_psp_reference()
            created_at, created_us = utc_now()
            session.insert_modification(
                cancel_reference, psp_reference, "cancel", None, auth["currency"], created_at, created_us
            )
            session.mark_cancelled(psp_reference)
            return request.commit_response(
                201,
                {
                    "psp_reference": cancel_reference,
                    "original_reference": psp_reference,
                    "status": "cancelled",
                    "created_at": created_at,
                },
            )

    def create_refund(self, request: Request, psp_reference: str) -> Response:
        """``POST /v1/authorizations/{psp_reference}/refunds`` ``{"amount": int minor units}`` -> 201
        refund. Refunds of one authorization never sum above its captured amount. Errors: 422
        ``invalid_request``, 404 ``not_found``, 409 ``invalid_state`` (not ``captured``), 422
        ``amount_exceeds_captured``."""
        amount = _require_amount(request.payload)
        session = request.session
        with session.write():
            auth = authorization_for_update(session, psp_reference, "captured")
            _check_currency_matches(request.payload, auth["currency"])
            if auth["refunded_amount"] + amount > auth["captured_amount"]:
                raise ApiError(422, "amount_exceeds_captured", "Refunds would exceed the captured amount")
            refund_reference = session.new_psp_reference()
            created_at, created_us = utc_now()
            session.insert_modification(
                refund_reference, psp_reference, "refund", amount, auth["currency"], created_at, created_us
            )
            session.set_refunded_amount(psp_reference, auth["refunded_amount"] + amount)
            return request.commit_response(
                201,
                {
                    "psp_reference": refund_reference,
                    "original_reference": psp_reference,
                    "status": "refunded",
                    "amount": amount,
                    "currency": auth["currency"],
                    "created_at": created_at,
                },
            )


class SettlementReportResource:
    """``GET /v1/reports/settlement``.

    Expects ``company_account`` and ``merchant_account`` (the names the report carries) to be set by
    the subclass.
    """

    company_account: str
    merchant_account: str

    def settlement_report(self, request: Request) -> Response:
        """``GET /v1/reports/settlement?date=YYYY-MM-DD`` -> 200 ``text/csv``: the Settlement details
        report of that UTC day (header row only when the day had no activity). Errors: 422
        ``invalid_request`` for a missing/malformed date or a date before 2020-01-01."""
        values = request.query.get("date") or [""]
        raw = values[0]
        try:
            if not _DATE_RE.match(raw):
                raise ValueError(raw)
            day = date.fromisoformat(raw)
            batch = batch_number(day)
        except ValueError:
            raise ApiError(422, "invalid_request", "date must be YYYY-MM-DD, on or after 2020-01-01") from None
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        with request.session.read():
            entries = request.session.settlement_entries(
                datetime_to_micros(start), datetime_to_micros(start + timedelta(days=1))
            )
        body = build_settlement_report(day, entries, self.company_account, self.merchant_account)
        return Response(
            200,
            body,
            CSV_CONTENT_TYPE,
            [("Content-Disposition", f'attachment; filename="settlement_detail_report_batch_{batch}.csv"')],
        )
