"""Strict DRF input fields and a serializer base that rejects unknown fields. Each field carries its OpenAPI
schema (drf-spectacular), so the published schema states exactly what the field accepts."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from iso4217 import Currency
from rest_framework import serializers

from ledger.errors import InvalidAmount
from ledger.money import currency_exponent

# The largest amount accepted, in minor units (fits every processor's 12-digit amount field).
MAX_AMOUNT = 999_999_999_999
#: ISO 4217 codes that have minor units (the only ones a payment can use), upper case, sorted.
CURRENCY_CODES = sorted({c.code for c in Currency if c.exponent is not None})
MAX_METADATA_KEYS = 50
MAX_METADATA_KEY_LENGTH = 40
MAX_METADATA_VALUE_LENGTH = 500


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


@extend_schema_field(
    {
        "type": "integer",
        "format": "int64",
        "minimum": 1,
        "maximum": MAX_AMOUNT,
        "description": "Minor units of the currency (ISO 4217): 2599 EUR = 25.99 €, 500 JPY = ¥500.",
        "example": 2599,
    }
)
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


@extend_schema_field(
    {
        "type": "string",
        "enum": CURRENCY_CODES,
        "description": "ISO 4217 currency code with minor units; lower case is accepted and returned upper case.",
        "example": "EUR",
    }
)
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


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {"type": "string", "maxLength": MAX_METADATA_VALUE_LENGTH},
        "maxProperties": MAX_METADATA_KEYS,
        "description": f"Your own key-value pairs: at most {MAX_METADATA_KEYS} keys of 1–{MAX_METADATA_KEY_LENGTH} "
        f"characters, string values of at most {MAX_METADATA_VALUE_LENGTH} characters.",
        "example": {"order_id": "1001"},
    }
)
class MetadataField(serializers.DictField):
    """`metadata`: at most 50 string keys of 1–40 characters mapping to strings of at most 500 characters."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("child", serializers.CharField(allow_blank=True, max_length=MAX_METADATA_VALUE_LENGTH))
        kwargs.setdefault("required", False)
        kwargs.setdefault("default", dict)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> dict[str, str]:
        """Validate the mapping and its limits; raises ValidationError naming the broken one."""
        value = super().to_internal_value(data)
        if len(value) > MAX_METADATA_KEYS:
            raise serializers.ValidationError(f"At most {MAX_METADATA_KEYS} keys.")
        for key in value:
            if not key or len(key) > MAX_METADATA_KEY_LENGTH:
                raise serializers.ValidationError(f"Keys must be 1–{MAX_METADATA_KEY_LENGTH} characters.")
        return value
