"""Test cards and tokens of the sandbox acquirer.

Seven fixed tokens (``tok_visa`` ...) each stand for one public test card number; ``POST /v1/tokens``
mints further tokens for those numbers only. A card number is never stored or logged: only its
fingerprint (:func:`fingerprint`) and its brand/BIN/last4/country/expiry are kept.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass

#: Authorization behaviours of a test card.
APPROVE = "approve"
DECLINE = "decline"
PROCESSOR_ERROR = "processor_error"
TIMEOUT = "timeout"

#: Fixed salt of the card fingerprint HMAC. Public on purpose: this is a sandbox, and a stable
#: salt makes fingerprints stable across runs and installations.
FINGERPRINT_SALT = b"clearhouse-sandbox-acquirer-fingerprint-v1"

#: Expiry reported for the fixed tokens (minted tokens report the expiry they were minted with).
FIXED_TOKEN_EXP_MONTH = 12
FIXED_TOKEN_EXP_YEAR = 2030

_TOKEN_ALPHABET = string.ascii_letters + string.digits
MINTED_TOKEN_RANDOM_LENGTH = 24


@dataclass(frozen=True)
class SandboxCard:
    """One test card and the fixed token that stands for it.

    Attributes: ``token`` (fixed token, e.g. ``"tok_visa"``), ``number`` (public test PAN, digits),
    ``brand`` (``"visa"``/``"mastercard"``), ``bin`` (6 digits), ``last4``, ``country`` (ISO 3166-1
    alpha-2 issuing country), ``behaviour`` (one of :data:`APPROVE`, :data:`DECLINE`,
    :data:`PROCESSOR_ERROR`, :data:`TIMEOUT`) and ``refusal_reason`` (code for :data:`DECLINE`,
    else ``None``).
    """

    token: str
    number: str
    brand: str
    bin: str
    last4: str
    country: str
    behaviour: str
    refusal_reason: str | None = None


SANDBOX_CARDS: tuple[SandboxCard, ...] = (
    SandboxCard("tok_visa", "4242424242424242", "visa", "424242", "4242", "US", APPROVE),
    SandboxCard("tok_mastercard", "5555555555554444", "mastercard", "555555", "4444", "GB", APPROVE),
    SandboxCard("tok_declined", "4000000000000002", "visa", "400000", "0002", "US", DECLINE, "card_declined"),
    SandboxCard(
        "tok_insufficient_funds", "4000000000009995", "visa", "400000", "9995", "US", DECLINE, "insufficient_funds"
    ),
    SandboxCard("tok_processor_error", "4000000000000119", "visa", "400000", "0119", "US", PROCESSOR_ERROR),
    SandboxCard("tok_timeout", "4000000000003220", "visa", "400000", "3220", "US", TIMEOUT),
    # As listed in the spec; note this number does not pass the Luhn check (it is accepted anyway).
    SandboxCard("tok_risky", "4000200000000077", "visa", "400020", "0077", "NG", APPROVE),
)

#: Fixed token -> card.
CARDS_BY_TOKEN: dict[str, SandboxCard] = {card.token: card for card in SANDBOX_CARDS}
#: Test card number -> card.
CARDS_BY_NUMBER: dict[str, SandboxCard] = {card.number: card for card in SANDBOX_CARDS}


def luhn_valid(number: str) -> bool:
    """Return whether ``number`` (a string of ASCII digits) passes the Luhn checksum.

    Returns ``False`` for an empty string or any non-digit character. Never raises.
    """
    if not number or not all("0" <= ch <= "9" for ch in number):
        return False
    total = 0
    for position, ch in enumerate(reversed(number)):
        digit = ord(ch) - 48
        if position % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def fingerprint(number: str) -> str:
    """Return the stable fingerprint of a card number: HMAC-SHA256 with :data:`FINGERPRINT_SALT`,
    hex, first 32 characters. The same number always gives the same fingerprint."""
    return hmac.new(FINGERPRINT_SALT, number.encode("ascii", "replace"), hashlib.sha256).hexdigest()[:32]


def new_token() -> str:
    """Return a fresh random token id: ``"tok_"`` + 24 characters from ``[A-Za-z0-9]``."""
    return "tok_" + "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(MINTED_TOKEN_RANDOM_LENGTH))


def card_details(card: SandboxCard, exp_month: int, exp_year: int) -> dict:
    """Return the public ``card`` object of the API for ``card``.

    Shape: ``{"brand", "bin", "last4", "country", "exp_month", "exp_year", "fingerprint"}``
    (``exp_month``/``exp_year`` ints). Contains no card number.
    """
    return {
        "brand": card.brand,
        "bin": card.bin,
        "last4": card.last4,
        "country": card.country,
        "exp_month": exp_month,
        "exp_year": exp_year,
        "fingerprint": fingerprint(card.number),
    }
