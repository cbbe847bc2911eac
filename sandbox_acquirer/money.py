"""Money helpers for the sandbox acquirer: ISO 4217 exponents, integer fee maths, decimal rendering.

Every amount is an ``int`` in minor units (cents for EUR, yen for JPY). Nothing here uses floats.
"""

from __future__ import annotations

import re

from iso4217 import Currency

#: Largest amount (minor units) the acquirer accepts in any request. Keeps every sum well inside
#: SQLite's signed 64-bit integers.
MAX_AMOUNT = 10**15

_CODE_RE = re.compile(r"^[A-Z]{3}$")


def currency_exponent(code: object) -> int | None:
    """Return the ISO 4217 exponent (number of minor-unit digits) of a currency code.

    ``code`` must be an upper-case three-letter ISO 4217 code such as ``"EUR"`` (2) or ``"JPY"`` (0).
    Returns ``None`` when ``code`` is not a string of that shape, is unknown, or has no minor unit
    defined (e.g. ``"XAU"``, ``"XXX"``); such currencies are not accepted by the acquirer.
    Never raises.
    """
    if not isinstance(code, str) or not _CODE_RE.match(code):
        return None
    try:
        exponent = Currency(code).exponent
    except ValueError:
        return None
    return exponent if isinstance(exponent, int) else None


def is_valid_amount(value: object) -> bool:
    """Return whether ``value`` is an acceptable request amount: an ``int`` (not ``bool``) in
    minor units with ``1 <= value <= MAX_AMOUNT``. Never raises."""
    return type(value) is int and 1 <= value <= MAX_AMOUNT


def basis_points_half_up(amount: int, bps: int) -> int:
    """Return ``amount * bps / 10000`` rounded half-up to whole minor units, in integers only.

    ``amount`` is a non-negative ``int`` in minor units; ``bps`` a non-negative ``int`` in basis
    points (1 bps = 0.01 %). Example: ``basis_points_half_up(10000, 60) == 60`` (0.60 % of 100.00).
    Raises ``ValueError`` for negative inputs.
    """
    if amount < 0 or bps < 0:
        raise ValueError("amount and bps must be non-negative")
    return (amount * bps + 5000) // 10000


def format_minor_units(amount: int, exponent: int) -> str:
    """Render ``amount`` (``int``, minor units) as a decimal string in major units.

    ``exponent`` is the ISO 4217 exponent (``int`` >= 0). Examples: ``(1000, 2) -> "10.00"``,
    ``(9887, 2) -> "98.87"``, ``(-135, 2) -> "-1.35"``, ``(1000, 0) -> "1000"``,
    ``(5, 3) -> "0.005"``. Integer arithmetic only. Raises ``ValueError`` for a negative exponent.
    """
    if exponent < 0:
        raise ValueError("exponent must be non-negative")
    sign = "-" if amount < 0 else ""
    whole, fraction = divmod(abs(amount), 10**exponent)
    if exponent == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{fraction:0{exponent}d}"
