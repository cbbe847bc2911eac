"""The processor adapter interface and the plain data types that cross it (Saleor's gateway pattern).

Every call carries an idempotency key derived from Clearhouse's own ids (`pay_…:authorize`), so a retried call is
answered from the processor's idempotency store instead of charging twice.
"""

from __future__ import annotations

import abc
import datetime as dt
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, kw_only=True)
class CardDetails:
    """What a processor tells about the card behind a token: brand, BIN (6–8 digits), last 4, issuing country, and
    `fingerprint`, the processor's stable id of the card number (same card → same fingerprint; empty if unknown)."""

    brand: str
    bin: str
    last4: str
    country: str
    fingerprint: str = ""


@dataclass(frozen=True, kw_only=True)
class AuthorizationRequest:
    """Authorize `amount` minor units of `currency` on `token`. `reference` is our payment id."""

    reference: str
    amount: int
    currency: str
    token: str
    idempotency_key: str


@dataclass(frozen=True, kw_only=True)
class AuthorizationResult:
    """The processor's answer: approved with a PSP reference, or declined with a decline code."""

    approved: bool
    psp_reference: str
    decline_code: str = ""
    decline_message: str = ""
    card: CardDetails | None = None


@dataclass(frozen=True, kw_only=True)
class ModificationRequest:
    """Capture, void (cancel) or refund on an authorization: `amount` in minor units (0 for a void)."""

    psp_reference: str
    amount: int
    currency: str
    idempotency_key: str


@dataclass(frozen=True, kw_only=True)
class ModificationResult:
    """The processor accepted the modification; `psp_reference` is the modification's own reference."""

    psp_reference: str


class ProcessorError(Exception):
    """A processor call failed. `retryable` errors (timeouts, 5xx, in-flight) may succeed on a retry with the
    same idempotency key; others (`invalid_state`, `invalid_request`…) will not. `code` is stable."""

    def __init__(self, code: str, message: str = "", *, retryable: bool, status: int | None = None) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message
        self.retryable = retryable
        self.status = status


class Processor(abc.ABC):
    """A card processor adapter. Implementations talk HTTP with connect and read timeouts and raise
    ProcessorError for anything but a definite answer. A decline is an answer, not an error."""

    def __init__(self, *, name: str, config: dict[str, Any]) -> None:
        self.name = name
        self.config = config

    @abc.abstractmethod
    def authorize(self, request: AuthorizationRequest) -> AuthorizationResult:
        """Authorize a payment (a card hold). Raises ProcessorError."""

    @abc.abstractmethod
    def capture(self, request: ModificationRequest) -> ModificationResult:
        """Capture all or part of an authorization. Raises ProcessorError."""

    @abc.abstractmethod
    def void(self, request: ModificationRequest) -> ModificationResult:
        """Cancel an uncaptured authorization, releasing the hold. Raises ProcessorError."""

    @abc.abstractmethod
    def refund(self, request: ModificationRequest) -> ModificationResult:
        """Refund all or part of a capture. Raises ProcessorError."""

    @abc.abstractmethod
    def settlement_report(self, day: dt.date) -> bytes:
        """The processor's settlement report for `day` (UTC), as the processor formats it. Raises ProcessorError."""
