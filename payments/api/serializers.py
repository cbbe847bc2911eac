"""Input serializers for the payments, refunds and events endpoints (output is payments.representations,
documented by payments.api.openapi). Every serializer refuses unknown fields."""

from __future__ import annotations

from rest_framework import serializers

from config.platform.http.fields import (
    MAX_METADATA_KEY_LENGTH,
    MAX_METADATA_KEYS,
    MAX_METADATA_VALUE_LENGTH,
    CurrencyField,
    MetadataField,
    MinorUnitsField,
    StrictSerializer,
)
from payments.models import CaptureMethod, RefundReason

__all__ = [
    "MAX_METADATA_KEYS",
    "MAX_METADATA_KEY_LENGTH",
    "MAX_METADATA_VALUE_LENGTH",
    "CustomerSerializer",
    "PaymentCaptureSerializer",
    "PaymentCreateSerializer",
    "PaymentVoidSerializer",
    "RefundCreateSerializer",
]


class CustomerSerializer(StrictSerializer):
    """`customer`: the payer's email and IP address (both optional), used by fraud rules."""

    email = serializers.EmailField(
        required=False, allow_blank=True, max_length=254, help_text="The payer's email address."
    )
    ip = serializers.IPAddressField(required=False, allow_null=True, help_text="The payer's IPv4 or IPv6 address.")


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
        choices=CaptureMethod.choices,
        default=CaptureMethod.AUTOMATIC,
        required=False,
        help_text="`automatic`: captured as soon as authorized. `manual`: held until you capture or void it.",
    )
    description = serializers.CharField(
        required=False, allow_blank=True, max_length=1000, default="", help_text="Shown in the admin and reports."
    )
    metadata = MetadataField()
    customer = CustomerSerializer(required=False, help_text="The payer, for fraud rules.")


class PaymentCaptureSerializer(StrictSerializer):
    """Body of `POST /v1/payments/{id}/capture`: optional `amount_to_capture` (minor units, ≤ authorized)."""

    amount_to_capture = MinorUnitsField(
        required=False, help_text="Minor units to capture, at most the authorized amount (default: all of it)."
    )


class PaymentVoidSerializer(StrictSerializer):
    """Body of `POST /v1/payments/{id}/void`: optional `reason`."""

    reason = serializers.ChoiceField(
        choices=["requested_by_customer", "duplicate", "fraudulent", "abandoned"],
        required=False,
        help_text="Why the authorization is voided.",
    )


class RefundCreateSerializer(StrictSerializer):
    """Body of `POST /v1/refunds`: the payment, an optional amount (default: all that is refundable), a reason."""

    payment = serializers.RegexField(
        r"^pay_[0-9a-z]{1,36}$",
        help_text="The id of a captured payment (`pay_…`).",
        error_messages={"invalid": "Must be a payment id such as pay_01jd3k…"},
    )
    amount = MinorUnitsField(
        required=False,
        help_text="Minor units to refund, at most what is still refundable (default: all of it).",
    )
    reason = serializers.ChoiceField(choices=RefundReason.choices, required=False, help_text="Why you refund.")
    metadata = MetadataField()
