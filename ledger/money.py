"""Money in the ledger: integer minor units of ISO 4217 currencies (docs/ledger.md, "Money").

Pure functions, no database: other apps use them to validate an amount or a currency the way the ledger will
(`currency_exponent`, `minor_units`), and the ledger's services to check every leg (`MAX_AMOUNT`).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from iso4217 import Currency

from ledger.errors import InvalidAmount

#: The largest amount of one entry, in minor units (PostgreSQL bigint; far above any card amount).
MAX_AMOUNT = 10**15


def currency_exponent(currency: str) -> int:
    """The ISO 4217 minor-unit exponent of `currency` (2 for EUR, 0 for JPY, 3 for BHD), from the iso4217 package.

    Raises InvalidAmount for a code that is not an upper-case ISO 4217 currency with minor units (`XAU`, `ZZZ`).
    """
    if not isinstance(currency, str) or currency != currency.upper():
        raise InvalidAmount(f"{currency!r} is not an upper-case ISO 4217 currency code")
    try:
        exponent = Currency(currency).exponent
    except ValueError as exc:
        raise InvalidAmount(f"{currency!r} is not an ISO 4217 currency code") from exc
    if exponent is None:
        raise InvalidAmount(f"{currency!r} has no minor units and cannot be used for payments")
    return int(exponent)


def minor_units(*, amount: Decimal | str, currency: str) -> int:
    """Convert a decimal amount in major units (`"25.99"` EUR) to integer minor units (2599), exactly.

    The number of decimals allowed comes from ISO 4217 (`currency_exponent`): `"10.001"` EUR, `"5.5"` JPY or
    `"1.0005"` BHD do not fit and raise InvalidAmount, as do floats, non-numbers and amounts outside
    0 … MAX_AMOUNT minor units. Nothing is rounded.
    """
    if not isinstance(amount, Decimal | str):
        raise InvalidAmount(f"amount must be a Decimal or a decimal string, got {type(amount).__name__}")
    exponent = currency_exponent(currency)
    try:
        value = Decimal(amount)
    except InvalidOperation as exc:
        raise InvalidAmount(f"{amount!r} is not a decimal amount") from exc
    if not value.is_finite():
        raise InvalidAmount(f"{amount!r} is not a finite amount")
    scaled = value.scaleb(exponent)
    if scaled != scaled.to_integral_value():
        raise InvalidAmount(f"{amount} {currency} has more than {exponent} decimals (ISO 4217)")
    units = int(scaled)
    if not 0 <= units <= MAX_AMOUNT:
        raise InvalidAmount(f"{amount} {currency} is outside 0 … {MAX_AMOUNT} minor units")
    return units
