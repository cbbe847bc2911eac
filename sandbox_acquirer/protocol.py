"""HTTP helpers of the sandbox acquirer: errors, responses, the request object, body reading.

Nothing here knows a route or a resource: :class:`ApiError` and :class:`Response` (and the JSON
helpers) are what handlers raise and return, :class:`Request` is what they receive, and
:func:`read_body` / :func:`parse_json` / :func:`request_hash` are what the POST path
(:mod:`sandbox_acquirer.routing`) uses to read a body and identify it for idempotency.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from . import cards
from .store import Session

#: Largest request body accepted, bytes (larger is 413 ``payload_too_large``).
MAX_BODY_BYTES = 64 * 1024
#: Longest ``Idempotency-Key``, ``reference`` and ``merchant_account``, characters.
MAX_KEY_LENGTH = 255

JSON_CONTENT_TYPE = "application/json"
CSV_CONTENT_TYPE = "text/csv; charset=utf-8"

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


def read_body(environ: dict) -> bytes:
    """Return the request body (bytes) of the WSGI ``environ``: ``CONTENT_LENGTH`` bytes, or all of a
    terminated input stream, or ``b""`` (no length and no terminated stream). Raises :class:`ApiError`
    400 ``invalid_request`` for a bad ``Content-Length`` and 413 ``payload_too_large`` for a body
    over :data:`MAX_BODY_BYTES`."""
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


def parse_json(body: bytes) -> object | None:
    """Return the decoded JSON of ``body`` (bytes): ``{}`` for an empty body, ``None`` when it is not
    valid UTF-8 JSON (``NaN``/``Infinity`` included)."""
    if not body.strip():
        return {}

    def reject_constant(name: str) -> object:
        raise ValueError(f"{name} is not valid JSON")

    try:
        return json.loads(body.decode("utf-8"), parse_constant=reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
