"""Input serializers for the payments endpoints (output is payments.representations)."""

from __future__ import annotations

from rest_framework import serializers

from payments.api.fields import CurrencyField, MinorUnitsField, StrictSerializer
from payments.models import CaptureMethod

MAX_METADATA_KEYS = 50
MAX_METADATA_KEY_LENGTH = 40
MAX_METADATA_VALUE_LENGTH = 500


class CustomerSerializer(StrictSerializer):
    """`customer`: the payer's email and IP address (both optional), used by fraud rules."""

    email = serializers.EmailField(required=False, allow_blank=True, max_length=254)
    ip = serializers.IPAddressField(required=False, allow_null=True)


class PaymentCreateSerializer(StrictSerializer):
    """Body of `POST /v1/payments`."""

    amount = MinorUnitsField(help_text="Amount in minor units of `currency` (1000 = 10.00 EUR).")
    currency = CurrencyField(help_text="ISO 4217 currency code.")
    payment_method = serializers.RegexField(
        r"^tok_[A-Za-z0-9_]{1,60}$",
        help_text="A processor token (`tok_visa`…); card numbers are refused.",
        error_messages={"invalid": "Must be a payment method token such as tok_visa."},
    )
    capture_method = serializers.ChoiceField(
        choices=CaptureMethod.choices, default=CaptureMethod.AUTOMATIC, required=False
    )
    description = serializers.CharField(required=False, allow_blank=True, max_length=1000, default="")
    metadata = serializers.DictField(
        child=serializers.CharField(allow_blank=True, max_length=MAX_METADATA_VALUE_LENGTH),
        required=False,
        default=dict,
    )
    customer = CustomerSerializer(required=False)

    def validate_metadata(self, value: dict[str, str]) -> dict[str, str]:
        if len(value) > MAX_METADATA_KEYS:
            raise serializers.ValidationError(f"At most {MAX_METADATA_KEYS} keys.")
        for key in value:
            if not key or len(key) > MAX_METADATA_KEY_LENGTH:
                raise serializers.ValidationError(f"Keys must be 1–{MAX_METADATA_KEY_LENGTH} characters.")
        return value


class PaymentCaptureSerializer(StrictSerializer):
    """Body of `POST /v1/payments/{id}/capture`: optional `amount_to_capture` (minor units, ≤ authorized)."""

    amount_to_capture = MinorUnitsField(required=False)


class PaymentVoidSerializer(StrictSerializer):
    """Body of `POST /v1/payments/{id}/void`: optional `reason`."""

    reason = serializers.ChoiceField(
        choices=["requested_by_customer", "duplicate", "fraudulent", "abandoned"], required=False
    )
