"""The sandbox acquirer's WSGI application.

``create_app()`` builds a :class:`SandboxAcquirer` (a WSGI callable); ``application`` (for
``gunicorn payments.sandbox_acquirer.app:application``) is created from the environment on first
access, so importing this module has no side effects. The protocol is described in
``docs/sandbox-acquirer.md``.

Environment (read when the app is created): ``SANDBOX_ACQUIRER_DB`` (SQLite path, default
``.data/sandbox_acquirer.sqlite3``), ``SANDBOX_ACQUIRER_API_KEY`` (default ``sandbox_acquirer_key``),
``SANDBOX_ACQUIRER_SLOW_SECONDS`` (default 15 seconds), ``SANDBOX_ACQUIRER_COMPANY_ACCOUNT`` (default
``ClearhouseCompany``) and ``SANDBOX_ACQUIRER_MERCHANT_ACCOUNT`` (default ``ClearhouseSandbox``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http import HTTPStatus
from urllib.parse import parse_qs

from . import cards
from .money import MAX_AMOUNT, currency_exponent, is_valid_amount
from .report import batch_number, build_settlement_report
from .store import (
    BUSY_TIMEOUT_SECONDS,
    LostIdempotencyClaim,
    Session,
    Store,
    datetime_to_micros,
    utc_now,
)

logger = logging.getLogger("payments.sandbox_acquirer")

DEFAULT_DB_PATH = os.path.join(".data", "sandbox_acquirer.sqlite3")
DEFAULT_API_KEY = "sandbox_acquirer_key"
DEFAULT_SLOW_SECONDS = 15.0
DEFAULT_COMPANY_ACCOUNT = "ClearhouseCompany"
DEFAULT_MERCHANT_ACCOUNT = "ClearhouseSandbox"

#: Largest request body accepted, bytes (larger is 413 ``payload_too_large``).
MAX_BODY_BYTES = 64 * 1024
#: Longest ``Idempotency-Key``, ``reference`` and ``merchant_account``, characters.
MAX_KEY_LENGTH = 255

JSON_CONTENT_TYPE = "application/json"
CSV_CONTENT_TYPE = "text/csv; charset=utf-8"

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
#: Body fields replaced by their HMAC before the idempotency request hash is computed, so that
#: not even a hash of a card number or CVC is stored.
_SENSITIVE_FIELDS = ("number", "cvc")


class ApiError(Exception):
    """An error answer: ``status`` (int HTTP status), ``code`` (the ``error`` field) and
    ``message`` (human-readable). Raised by handlers; rendered as
    ``{"error": code, "message": message}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class Response:
    """A response: ``status`` (int), ``body`` (bytes), ``content_type`` and extra ``headers``
    (list of ``(name, value)``). ``stored`` is true once it has been saved as the idempotent
    response of its key."""

    status: int
    body: bytes
    content_type: str = JSON_CONTENT_TYPE
    headers: list[tuple[str, str]] = field(default_factory=list)
    stored: bool = False


def encode_json(payload: object) -> bytes:
    """Serialize ``payload`` as compact UTF-8 JSON bytes (key order preserved)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def json_response(status: int, payload: object) -> Response:
    """Return a JSON :class:`Response` with ``status`` (int) and ``payload`` (JSON-serializable)."""
    return Response(status, encode_json(payload))


def error_response(error: ApiError) -> Response:
    """Return the JSON error :class:`Response` ``{"error", "message"}`` for ``error``."""
    return json_response(error.status, {"error": error.code, "message": error.message})


def _sensitive_digest(value: object) -> str:
    raw = json.dumps(value, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return "hmac:" + hmac.new(cards.FINGERPRINT_SALT, raw, hashlib.sha256).hexdigest()


def request_hash(method: str, path: str, payload: object, raw_body: bytes) -> str:
    """Return the hex SHA-256 identifying a request for idempotency: method, path and the
    canonical JSON of ``payload`` (sorted keys, compact). Card ``number``/``cvc`` values are
    replaced by their HMAC first. ``payload`` is ``None`` when the body is not valid JSON; the
    HMAC of ``raw_body`` (bytes) is used instead."""
    if payload is None:
        canonical = "invalid-json:" + _sensitive_digest(raw_body.decode("latin-1"))
    else:
        if isinstance(payload, dict):
            payload = {
                name: _sensitive_digest(value) if name in _SENSITIVE_FIELDS else value
                for name, value in payload.items()
            }
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    material = f"{method}\n{path}\n{canonical}".encode("utf-8", "surrogatepass")
    return hashlib.sha256(material).hexdigest()


class Request:
    """One incoming request as seen by a handler.

    ``method``/``path`` (str), ``query`` (dict of lists), ``payload`` (the JSON object body; ``{}``
    for GET or an empty body), ``session`` (the request's :class:`Session`), and for POSTs the
    ``idempotency_key`` and the claim ``owner`` token.
    """

    def __init__(self, environ: dict, session: Session) -> None:
        self.environ = environ
        self.method: str = environ.get("REQUEST_METHOD", "GET").upper()
        self.path: str = environ.get("PATH_INFO", "") or "/"
        self.query: dict[str, list[str]] = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        self.session = session
        self.payload: dict = {}
        self.idempotency_key: str | None = None
        self.owner: str | None = None

    def commit_response(self, status: int, payload: object) -> Response:
        """Build the JSON response and, for an idempotent request, store it as the key's response.

        Must be called inside ``self.session.write()`` right after the request's own writes, so the
        data and the stored response commit (or roll back) together. Raises
        :class:`LostIdempotencyClaim` if the key is no longer owned by this request.
        """
        response = json_response(status, payload)
        if self.idempotency_key is not None and self.owner is not None:
            self.session.complete_idempotency_key(
                self.idempotency_key, self.owner, response.status, response.body, response.content_type
            )
            response.stored = True
        return response


Handler = Callable[..., Response]


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


class SandboxAcquirer:
    """The WSGI application (callable as ``app(environ, start_response)``; thread-safe).

    Holds only configuration: ``store`` (:class:`Store`), ``api_key`` (str), ``slow_seconds``
    (float seconds ``tok_timeout`` sleeps), ``company_account`` and ``merchant_account`` (report
    names; the latter is also the default ``merchant_account`` of authorizations). Each request
    gets its own SQLite connection. Use :func:`create_app` to build one.
    """

    def __init__(
        self,
        store: Store,
        api_key: str,
        slow_seconds: float,
        company_account: str = DEFAULT_COMPANY_ACCOUNT,
        merchant_account: str = DEFAULT_MERCHANT_ACCOUNT,
    ) -> None:
        self.store = store
        self.api_key = api_key
        self.slow_seconds = slow_seconds
        self.company_account = company_account
        self.merchant_account = merchant_account
        # An in-flight idempotency record older than this is treated as abandoned (its worker died).
        self.idempotency_lease_us = int(max(300.0, 2 * slow_seconds + 2 * BUSY_TIMEOUT_SECONDS + 60.0) * 1_000_000)
        authorization = r"/v1/authorizations/(?P<psp_reference>[^/]+)"
        self.routes: list[tuple[re.Pattern[str], dict[str, Handler]]] = [
            (re.compile(r"^/healthz$"), {"GET": self.healthz}),
            (re.compile(r"^/v1/tokens$"), {"POST": self.create_token}),
            (re.compile(r"^/v1/authorizations$"), {"POST": self.create_authorization}),
            (re.compile(rf"^{authorization}$"), {"GET": self.get_authorization}),
            (re.compile(rf"^{authorization}/captures$"), {"POST": self.create_capture}),
            (re.compile(rf"^{authorization}/cancels$"), {"POST": self.create_cancel}),
            (re.compile(rf"^{authorization}/refunds$"), {"POST": self.create_refund}),
            (re.compile(r"^/v1/reports/settlement$"), {"GET": self.settlement_report}),
        ]

    # -- WSGI plumbing --------------------------------------------------------------------------

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        """WSGI entry point. Never raises: unexpected errors become 500 ``internal_error``."""
        try:
            response = self._dispatch(environ)
        except Exception:
            logger.exception(
                "sandbox acquirer: unhandled error on %s %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")
            )
            response = error_response(ApiError(500, "internal_error", "Internal error"))
        headers = [
            ("Content-Type", response.content_type),
            ("Content-Length", str(len(response.body))),
            ("Cache-Control", "no-store"),
            *response.headers,
        ]
        start_response(f"{response.status} {HTTPStatus(response.status).phrase}", headers)
        return [response.body]

    def _dispatch(self, environ: dict) -> Response:
        method = environ.get("REQUEST_METHOD", "GET").upper()
        path = environ.get("PATH_INFO", "") or "/"
        if path != "/healthz" and not self._authorized(environ):
            response = error_response(ApiError(401, "unauthorized", "Missing or invalid API key"))
            response.headers.append(("WWW-Authenticate", "Bearer"))
            return response
        for pattern, methods in self.routes:
            match = pattern.match(path)
            if match is None:
                continue
            handler = methods.get(method)
            if handler is None:
                response = error_response(ApiError(405, "method_not_allowed", f"{method} is not allowed on {path}"))
                response.headers.append(("Allow", ", ".join(sorted(methods))))
                return response
            if method == "POST":
                return self._handle_post(environ, handler, match.groupdict())
            with self.store.session() as session:
                try:
                    return handler(Request(environ, session), **match.groupdict())
                except ApiError as error:
                    return error_response(error)
        return error_response(ApiError(404, "not_found", f"No route for {path}"))

    def _authorized(self, environ: dict) -> bool:
        header = environ.get("HTTP_AUTHORIZATION", "")
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            return False
        return hmac.compare_digest(credentials.strip().encode("utf-8"), self.api_key.encode("utf-8"))

    @staticmethod
    def _read_body(environ: dict) -> bytes:
        raw_length = environ.get("CONTENT_LENGTH") or ""
        stream = environ.get("wsgi.input")
        if stream is None:
            return b""
        if raw_length.strip():
            try:
                length = int(raw_length)
            except ValueError:
                raise ApiError(400, "invalid_request", "Invalid Content-Length") from None
            if length < 0:
                raise ApiError(400, "invalid_request", "Invalid Content-Length")
            if length > MAX_BODY_BYTES:
                raise ApiError(413, "payload_too_large", f"Body larger than {MAX_BODY_BYTES} bytes")
            return stream.read(length) if length else b""
        if environ.get("wsgi.input_terminated"):
            body = stream.read(MAX_BODY_BYTES + 1)
            if len(body) > MAX_BODY_BYTES:
                raise ApiError(413, "payload_too_large", f"Body larger than {MAX_BODY_BYTES} bytes")
            return body
        return b""

    @staticmethod
    def _parse_json(body: bytes) -> object | None:
        if not body.strip():
            return {}

        def reject_constant(name: str) -> object:
            raise ValueError(f"{name} is not valid JSON")

        try:
            return json.loads(body.decode("utf-8"), parse_constant=reject_constant)
        except (UnicodeDecodeError, ValueError, RecursionError):
            return None

    def _handle_post(self, environ: dict, handler: Handler, params: dict[str, str]) -> Response:
        key = (environ.get("HTTP_IDEMPOTENCY_KEY") or "").strip()
        if not 1 <= len(key) <= MAX_KEY_LENGTH:
            return error_response(
                ApiError(
                    400,
                    "idempotency_key_missing",
                    f"An Idempotency-Key header of 1-{MAX_KEY_LENGTH} characters is required",
                )
            )
        try:
            body = self._read_body(environ)
        except ApiError as error:
            return error_response(error)
        payload = self._parse_json(body)
        method = environ.get("REQUEST_METHOD", "POST").upper()
        path = environ.get("PATH_INFO", "") or "/"
        digest = request_hash(method, path, payload, body)
        owner = secrets.token_hex(16)

        with self.store.session() as session:
            claim = session.claim_idempotency_key(key, digest, owner, self.idempotency_lease_us)
            if claim.outcome == "mismatch":
                return error_response(
                    ApiError(422, "idempotency_key_reused", "This Idempotency-Key was used with a different request")
                )
            if claim.outcome == "in_use":
                return error_response(
                    ApiError(
                        409, "idempotency_key_in_use", "A request with this Idempotency-Key is still being processed"
                    )
                )
            if claim.outcome == "replay":
                return Response(
                    claim.status or 500,
                    claim.body or b"",
                    claim.content_type or JSON_CONTENT_TYPE,
                    [("Idempotent-Replayed", "true")],
                    stored=True,
                )

            request = Request(environ, session)
            request.idempotency_key = key
            request.owner = owner
            try:
                if payload is None:
                    raise ApiError(400, "invalid_json", "The body must be a JSON object")
                if not isinstance(payload, dict):
                    raise ApiError(422, "invalid_request", "The body must be a JSON object")
                request.payload = payload
                response = handler(request, **params)
            except ApiError as error:
                response = error_response(error)
            except LostIdempotencyClaim:
                return error_response(
                    ApiError(
                        409, "idempotency_key_in_use", "A request with this Idempotency-Key is still being processed"
                    )
                )
            except Exception:
                logger.exception("sandbox acquirer: unhandled error on %s %s", method, path)
                response = error_response(ApiError(500, "internal_error", "Internal error"))

            if not response.stored:
                if response.status >= 500:
                    try:
                        session.release_idempotency_key(key, owner)
                    except Exception:
                        logger.exception("sandbox acquirer: could not release idempotency key after a 5xx")
                else:
                    try:
                        with session.write():
                            session.complete_idempotency_key(
                                key, owner, response.status, response.body, response.content_type
                            )
                        response.stored = True
                    except LostIdempotencyClaim:
                        pass  # taken over after the lease expired; nothing was written by this request
                    except Exception:
                        # Could not store it: free the key so that a retry is processed afresh.
                        logger.exception("sandbox acquirer: could not store the idempotent response")
                        try:
                            session.release_idempotency_key(key, owner)
                        except Exception:
                            logger.exception("sandbox acquirer: could not release idempotency key")
            return response

    # -- handlers -------------------------------------------------------------------------------

    def healthz(self, request: Request) -> Response:
        """``GET /healthz`` -> 200 ``{"status": "ok"}`` (no authentication)."""
        return json_response(200, {"status": "ok"})

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

    def _resolve_token(self, session: Session, token: str) -> tuple[cards.SandboxCard, int, int]:
        card = cards.CARDS_BY_TOKEN.get(token)
        if card is not None:
            return card, cards.FIXED_TOKEN_EXP_MONTH, cards.FIXED_TOKEN_EXP_YEAR
        row = session.get_token(token)
        if row is None or row["card_token"] not in cards.CARDS_BY_TOKEN:
            raise ApiError(422, "invalid_token", "Unknown token")
        return cards.CARDS_BY_TOKEN[row["card_token"]], row["exp_month"], row["exp_year"]

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
        card, exp_month, exp_year = self._resolve_token(request.session, token)

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

    @staticmethod
    def _authorization_for_update(session: Session, psp_reference: str, required_state: str) -> dict:
        row = session.get_authorization(psp_reference)
        if row is None:
            raise ApiError(404, "not_found", "No such authorization")
        if row["state"] != required_state:
            raise ApiError(409, "invalid_state", f"The authorization is {row['state']}, not {required_state}")
        return row

    def create_capture(self, request: Request, psp_reference: str) -> Response:
        """``POST /v1/authorizations/{psp_reference}/captures`` ``{"amount": int minor units}`` -> 201
        capture. One capture per authorization; a partial capture releases the rest. Errors:
        422 ``invalid_request``, 404 ``not_found``, 409 ``invalid_state`` (not ``authorised``),
        422 ``amount_exceeds_authorized``."""
        amount = _require_amount(request.payload)
        session = request.session
        with session.write():
            auth = self._authorization_for_update(session, psp_reference, "authorised")
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
            auth = self._authorization_for_update(session, psp_reference, "authorised")
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
            auth = self._authorization_for_update(session, psp_reference, "captured")
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


def _slow_seconds_from(value: float | str) -> float:
    seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"SANDBOX_ACQUIRER_SLOW_SECONDS must be a non-negative number, got {value!r}")
    return seconds


def create_app(
    db_path: str | None = None, api_key: str | None = None, slow_seconds: float | None = None
) -> SandboxAcquirer:
    """Build the WSGI app.

    Arguments override the environment, which is read now: ``db_path`` (SQLite file path;
    ``SANDBOX_ACQUIRER_DB``, default ``.data/sandbox_acquirer.sqlite3``; created with its directory
    if missing), ``api_key`` (``SANDBOX_ACQUIRER_API_KEY``, default ``sandbox_acquirer_key``),
    ``slow_seconds`` (float seconds ``tok_timeout`` sleeps; ``SANDBOX_ACQUIRER_SLOW_SECONDS``, default
    15). Report names come from ``SANDBOX_ACQUIRER_COMPANY_ACCOUNT`` / ``SANDBOX_ACQUIRER_MERCHANT_ACCOUNT``.
    Raises ``ValueError`` for a negative/non-numeric slow_seconds or an empty API key, and
    ``sqlite3.Error`` if the database cannot be initialised.
    """
    env = os.environ
    path = db_path if db_path is not None else env.get("SANDBOX_ACQUIRER_DB") or DEFAULT_DB_PATH
    key = api_key if api_key is not None else env.get("SANDBOX_ACQUIRER_API_KEY") or DEFAULT_API_KEY
    if not key:
        raise ValueError("the API key must not be empty")
    slow = _slow_seconds_from(
        slow_seconds if slow_seconds is not None else env.get("SANDBOX_ACQUIRER_SLOW_SECONDS") or DEFAULT_SLOW_SECONDS
    )
    return SandboxAcquirer(
        Store(path),
        key,
        slow,
        company_account=env.get("SANDBOX_ACQUIRER_COMPANY_ACCOUNT") or DEFAULT_COMPANY_ACCOUNT,
        merchant_account=env.get("SANDBOX_ACQUIRER_MERCHANT_ACCOUNT") or DEFAULT_MERCHANT_ACCOUNT,
    )


_application: SandboxAcquirer | None = None
_application_lock = threading.Lock()


def __getattr__(name: str) -> SandboxAcquirer:
    """Create ``application`` (``create_app()`` from the environment) on first access, once per
    process, so that importing this module neither reads the environment nor touches the disk."""
    if name != "application":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    global _application
    with _application_lock:
        if _application is None:
            _application = create_app()
        return _application
