"""Adapter for the sandbox acquirer (docs/sandbox-acquirer.md), over HTTP with connect and read timeouts."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import requests

from payments.processors.base import (
    AuthorizationRequest,
    AuthorizationResult,
    CardDetails,
    ModificationRequest,
    ModificationResult,
    Processor,
    ProcessorError,
)

# Errors the acquirer answers that a retry with the same idempotency key may overcome.
_RETRYABLE_CODES = {"idempotency_key_in_use"}


class SandboxProcessor(Processor):
    """The sandbox acquirer. Config: BASE_URL, API_KEY, MERCHANT_ACCOUNT, CONNECT_TIMEOUT, READ_TIMEOUT (seconds)."""

    def __init__(self, *, name: str, config: dict[str, Any]) -> None:
        super().__init__(name=name, config=config)
        self._local = threading.local()

    @property
    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers["Authorization"] = f"Bearer {self.config['API_KEY']}"
            self._local.session = session
        return session

    def _call(self, method: str, path: str, *, idempotency_key: str | None = None, json: Any = None) -> Any:
        url = self.config["BASE_URL"].rstrip("/") + path
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        timeout = (float(self.config["CONNECT_TIMEOUT"]), float(self.config["READ_TIMEOUT"]))
        try:
            response = self._session.request(method, url, json=json, headers=headers, timeout=timeout)
        except requests.Timeout as exc:
            raise ProcessorError("processor_timeout", str(exc), retryable=True) from exc
        except requests.RequestException as exc:
            raise ProcessorError("processor_unreachable", str(exc), retryable=True) from exc
        if response.status_code >= 500:
            raise ProcessorError("processor_error", response.text[:200], retryable=True, status=response.status_code)
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {}
            code = str(body.get("error") or f"http_{response.status_code}")
            raise ProcessorError(
                code, str(body.get("message", "")), retryable=code in _RETRYABLE_CODES, status=response.status_code
            )
        if response.headers.get("Content-Type", "").startswith("application/json"):
            return response.json()
        return response.content

    def authorize(self, request: AuthorizationRequest) -> AuthorizationResult:
        """POST /v1/authorizations. A refused authorization is a result with `approved=False`.

        An unknown token (422 `invalid_token`) is a decline with code `invalid_payment_method`.
        """
        try:
            body = self._call(
                "POST",
                "/v1/authorizations",
                idempotency_key=request.idempotency_key,
                json={
                    "amount": request.amount,
                    "currency": request.currency,
                    "token": request.token,
                    "reference": request.reference,
                    "merchant_account": self.config.get("MERCHANT_ACCOUNT", ""),
                },
            )
        except ProcessorError as exc:
            if exc.code == "invalid_token":
                return AuthorizationResult(
                    approved=False,
                    psp_reference="",
                    decline_code="invalid_payment_method",
                    decline_message="The payment method token is not known to the processor.",
                )
            raise
        card = body.get("card") or None
        return AuthorizationResult(
            approved=body["result"] == "authorised",
            psp_reference=body.get("psp_reference") or "",
            decline_code=body.get("refusal_reason") or "",
            decline_message=body.get("message") or "",
            card=CardDetails(
                brand=card.get("brand", ""),
                bin=card.get("bin", ""),
                last4=card.get("last4", ""),
                country=card.get("country", ""),
                fingerprint=card.get("fingerprint", ""),
            )
            if card
            else None,
        )

    def _modify(self, action: str, request: ModificationRequest, body: dict[str, Any]) -> ModificationResult:
        result = self._call(
            "POST",
            f"/v1/authorizations/{request.psp_reference}/{action}",
            idempotency_key=request.idempotency_key,
            json=body,
        )
        return ModificationResult(psp_reference=result["psp_reference"])

    def capture(self, request: ModificationRequest) -> ModificationResult:
        """POST /v1/authorizations/{psp}/captures with the amount to capture."""
        return self._modify("captures", request, {"amount": request.amount})

    def void(self, request: ModificationRequest) -> ModificationResult:
        """POST /v1/authorizations/{psp}/cancels."""
        return self._modify("cancels", request, {})

    def refund(self, request: ModificationRequest) -> ModificationResult:
        """POST /v1/authorizations/{psp}/refunds with the amount to refund."""
        return self._modify("refunds", request, {"amount": request.amount})

    def settlement_report(self, day: dt.date) -> bytes:
        """GET /v1/reports/settlement?date=YYYY-MM-DD: the Settlement details CSV."""
        content = self._call("GET", f"/v1/reports/settlement?date={day.isoformat()}")
        return content if isinstance(content, bytes) else str(content).encode()
