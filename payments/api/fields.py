"""Strict DRF input fields and a serializer base that rejects unknown fields."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from ledger.errors import InvalidAmount
from ledger.services import currency_exponent

# The largest amount accepted, in minor units (fits every processor's 12-digit amount field).
MAX_AMOUNT = 999_999_999_999


class StrictSerializer(serializers.Serializer):
    """A serializer whose input may contain only its declared fields (unknown fields are an error)."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: [serializers.ErrorDetail("Unknown field.", code="unknown_field")] for name in unknown}
                )
        return super().to_internal_value(data)


class MinorUnitsField(serializers.Field):
    """A money amount: a JSON integer (not a string, float or boolean) of minor units, 1 … MAX_AMOUNT."""

    default_error_messages = {
        "invalid": "Must be an integer number of minor units (e.g. 1000 for 10.00 EUR).",
        "range": f"Must be between 1 and {MAX_AMOUNT}.",
    }

    def to_internal_value(self, data: Any) -> int:
        if not isinstance(data, int) or isinstance(data, bool):
            self.fail("invalid")
        if not 1 <= data <= MAX_AMOUNT:
            self.fail("range")
        return data

    def to_representation(self, value: int) -> int:
        return value


class CurrencyField(serializers.CharField):
    """An ISO 4217 currency code with minor units; accepted in any case, returned upper case."""

    default_error_messages = {"currency": "Must be an ISO 4217 currency code such as EUR or USD."}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(min_length=3, max_length=3, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data).upper()
        try:
            currency_exponent(value)
        except InvalidAmount:
            self.fail("currency")
        return value
