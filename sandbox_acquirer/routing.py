"""WSGI plumbing of the sandbox acquirer: authentication, routing and idempotent POSTs.

:class:`Router` is the base of :class:`sandbox_acquirer.app.SandboxAcquirer`: it turns a WSGI
call into a :class:`~sandbox_acquirer.protocol.Response` by checking the API key, matching
``routes`` and calling the handler, and for every POST claims the ``Idempotency-Key`` first and
stores (or replays) the answer. The handlers themselves are in :mod:`sandbox_acquirer.resources`.
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
from collections.abc import Callable, Iterable
from http import HTTPStatus

from .protocol import (
    JSON_CONTENT_TYPE,
    MAX_KEY_LENGTH,
    ApiError,
    Handler,
    Request,
    Response,
    error_response,
    json_response,
    parse_json,
    read_body,
    request_hash,
)
from .store import LostIdempotencyClaim, Store

logger = logging.getLogger("sandbox_acquirer")


class Router:
    """The WSGI callable (``app(environ, start_response)``; thread-safe).

    Expects ``store`` (:class:`Store`), ``api_key`` (str), ``idempotency_lease_us`` (int
    microseconds after which an in-flight idempotency record counts as abandoned) and ``routes``
    (``(pattern, {method: handler})`` pairs, first match wins) to be set by the subclass.
    """

    store: Store
    api_key: str
    idempotency_lease_us: int
    routes: list[tuple[re.Pattern[str], dict[str, Handler]]]

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
            body = read_body(environ)
        except ApiError as error:
            return error_response(error)
        payload = parse_json(body)
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

    def healthz(self, request: Request) -> Response:
        """``GET /healthz`` -> 200 ``{"status": "ok"}`` (no authentication)."""
        return json_response(200, {"status": "ok"})
