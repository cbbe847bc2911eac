"""The OpenAPI description of the payments endpoints (drf-spectacular): payment, refund, event and balance objects.

The API renders plain dicts (payments.representations); the serializers here only *describe* those shapes for
the schema at `/v1/schema` (Swagger UI and ReDoc at `/v1/docs`). The shared pieces (problems, headers, paging,
the postprocessing hook) are in config.platform.http.openapi.
"""

from __future__ import annotations

from drf_spectacular.utils import PolymorphicProxySerializer
from rest_framework import serializers

from config.platform.http.fields import CURRENCY_CODES, MAX_AMOUNT, MetadataField
from config.platform.http.openapi import list_of
from payments.events import PUBLIC_EVENT_TYPES
from payments.models import CaptureMethod, PaymentStatus, RefundReason, RefundStatus

# --- Shared field shapes ----------------------------------------------------------------------------------------


def _amount(help_text: str, *, minimum: int = 0) -> serializers.IntegerField:
    return serializers.IntegerField(min_value=minimum, max_value=MAX_AMOUNT, help_text=help_text)


def _when(help_text: str) -> serializers.DateTimeField:
    return serializers.DateTimeField(allow_null=True, help_text=f"{help_text} (ISO 8601, UTC), or null.")


def _text(help_text: str) -> serializers.CharField:
    return serializers.CharField(allow_null=True, help_text=help_text)


class CardSerializer(serializers.Serializer):
    """What the processor told about the card behind the token (never the card number)."""

    brand = serializers.CharField(help_text="visa, mastercard…")
    bin = serializers.CharField(help_text="The first 6–8 digits (issuer identification).")
    last4 = serializers.CharField(help_text="The last 4 digits.")
    country = _text("The issuing country (ISO 3166-1 alpha-2).")


class PaymentMethodOutSerializer(serializers.Serializer):
    """The token the payment was made with, and its card once the processor has seen it."""

    token = serializers.CharField(help_text="The processor token (`tok_…`).")
    card = CardSerializer(allow_null=True, help_text="Null until the processor answered the authorization.")


class CustomerOutSerializer(serializers.Serializer):
    """The payer as given at creation."""

    email = _text("The payer's email address.")
    ip = _text("The payer's IP address.")


class HoldSerializer(serializers.Serializer):
    """A payment's hold (fraud review): while `active`, the payment does not settle to the available balance."""

    id = serializers.CharField(help_text="`hold_…`")
    status = serializers.ChoiceField(choices=["active", "released", "voided"])
    reason = serializers.CharField(help_text="Why it was held (`fraud_review`).")
    created = serializers.DateTimeField(help_text="When the hold was placed (ISO 8601, UTC).")
    ended = _when("When it was released or ended by a void")


class PaymentSerializer(serializers.Serializer):
    """A payment. Amounts are integers in minor units of `currency`."""

    id = serializers.CharField(help_text="`pay_…`")
    object = serializers.ChoiceField(choices=["payment"])
    status = serializers.ChoiceField(choices=PaymentStatus.choices, help_text="See docs/api.md, Lifecycle.")
    amount = _amount("The authorized (requested) amount.", minimum=1)
    amount_capturable = _amount("What a capture may take now (the amount while `authorized`, else 0).")
    amount_captured = _amount("What was captured.")
    amount_refunded = _amount("What succeeded refunds returned.")
    amount_refundable = _amount("What new refunds may still take (captured − refunded − pending refunds).")
    currency = serializers.ChoiceField(choices=CURRENCY_CODES, help_text="ISO 4217, upper case.")
    capture_method = serializers.ChoiceField(choices=CaptureMethod.choices)
    payment_method = PaymentMethodOutSerializer()
    description = serializers.CharField(allow_blank=True, help_text="As given at creation.")
    metadata = MetadataField()
    customer = CustomerOutSerializer()
    processor = serializers.CharField(help_text="The processor that handles the payment.")
    psp_reference = _text("The processor's reference of the authorization.")
    failure_code = _text("Why the last step failed (`card_declined`, `processor_error`…).")
    failure_message = _text("A human-readable failure reason.")
    void_reason = _text("The reason given with the void.")
    livemode = serializers.BooleanField(help_text="True for live-mode objects.")
    created = serializers.DateTimeField(help_text="When the payment was accepted (ISO 8601, UTC).")
    authorized_at = _when("When the processor approved it")
    captured_at = _when("When the capture was accepted")
    voided_at = _when("When the void was accepted")
    expires_at = _when("While `authorized`: when the uncaptured authorization expires")
    expired_at = _when("When it expired")
    hold = HoldSerializer(allow_null=True, help_text="The payment's latest hold, or null.")


class RefundSerializer(serializers.Serializer):
    """A refund of a captured payment. `amount` is in minor units of `currency`."""

    id = serializers.CharField(help_text="`re_…`")
    object = serializers.ChoiceField(choices=["refund"])
    payment = serializers.CharField(help_text="The refunded payment (`pay_…`).")
    status = serializers.ChoiceField(choices=RefundStatus.choices, help_text="`pending` until the processor answers.")
    amount = _amount("The refunded amount.", minimum=1)
    currency = serializers.ChoiceField(choices=CURRENCY_CODES, help_text="The payment's currency.")
    reason = serializers.ChoiceField(choices=RefundReason.choices, allow_null=True, help_text="Why you refunded.")
    metadata = MetadataField()
    psp_reference = _text("The processor's reference of the refund.")
    failure_code = _text("Why the refund failed.")
    failure_message = _text("A human-readable failure reason.")
    livemode = serializers.BooleanField(help_text="True for live-mode refunds.")
    created = serializers.DateTimeField(help_text="When the refund was requested (ISO 8601, UTC).")
    succeeded_at = _when("When the processor accepted it")
    failed_at = _when("When it failed")


EVENT_OBJECT = PolymorphicProxySerializer(
    component_name="EventObject",
    serializers={"payment": PaymentSerializer, "refund": RefundSerializer},
    resource_type_field_name="object",
)


class EventDataSerializer(serializers.Serializer):
    """The object the event is about, as it was right after the change."""

    object = EVENT_OBJECT


class EventSerializer(serializers.Serializer):
    """Something that happened to a payment or a refund (also delivered by webhooks)."""

    id = serializers.CharField(help_text="`evt_…`; the `webhook-id` of its deliveries.")
    object = serializers.ChoiceField(choices=["event"])
    type = serializers.ChoiceField(choices=sorted(PUBLIC_EVENT_TYPES), help_text="See docs/api.md, Events.")
    created = serializers.DateTimeField(help_text="When it happened (ISO 8601, UTC).")
    livemode = serializers.BooleanField(help_text="True for live-mode events.")
    request_id = _text("The id of the API request that caused it (`Request-Id`).")
    data = EventDataSerializer()


class AccountBalanceSerializer(serializers.Serializer):
    """One ledger account's balances in minor units (positive: Clearhouse owes you)."""

    posted = serializers.IntegerField(help_text="Posted movements.")
    pending = serializers.IntegerField(help_text="Open holds.")
    available = serializers.IntegerField(help_text="Posted minus outgoing holds.")


class AccountBalancesSerializer(serializers.Serializer):
    """The merchant's three ledger accounts in one currency (docs/ledger.md)."""

    available = AccountBalanceSerializer()
    pending = AccountBalanceSerializer()
    reserve = AccountBalanceSerializer()


class CurrencyBalanceSerializer(serializers.Serializer):
    """Balances in one currency, minor units."""

    currency = serializers.ChoiceField(choices=CURRENCY_CODES, help_text="ISO 4217, upper case.")
    available = serializers.IntegerField(help_text="Settled funds payable to you.")
    pending = serializers.IntegerField(help_text="Authorizations not yet captured or voided (open holds).")
    unsettled = serializers.IntegerField(help_text="Captured, not yet settled by the processor.")
    reserved = serializers.IntegerField(help_text="Withheld (reserve).")
    accounts = AccountBalancesSerializer()


class BalanceSerializer(serializers.Serializer):
    """`GET /v1/balance`: your balances per currency in the mode of your key."""

    object = serializers.ChoiceField(choices=["balance"])
    livemode = serializers.BooleanField(help_text="True for live-mode balances.")
    balances = CurrencyBalanceSerializer(many=True, help_text="One entry per currency, sorted by currency.")


class BalanceLineSerializer(serializers.Serializer):
    """How one of your accounts changed in a balance transaction (minor units)."""

    account = serializers.ChoiceField(choices=["pending", "available", "reserve"])
    currency = serializers.ChoiceField(choices=CURRENCY_CODES)
    posted = serializers.IntegerField(help_text="Change of the account's posted balance.")
    pending = serializers.IntegerField(help_text="Change of the account's held balance.")


class BalanceTransactionSerializer(serializers.Serializer):
    """A ledger transaction as it moved your balances. `amount` = `net` + `fee`, in minor units."""

    id = serializers.CharField(help_text="`btx_…`")
    object = serializers.ChoiceField(choices=["balance_transaction"])
    type = serializers.CharField(help_text="The ledger code: `authorization_hold`, `capture`, `refund`, `settlement`…")
    kind = serializers.ChoiceField(choices=["posted", "pending", "post_pending", "void_pending"])
    reference = serializers.CharField(help_text="What it records (`payment:pay_…`).")
    source = _text("The payment id, when it is about a payment.")
    description = _text("A description, when there is one.")
    currency = serializers.ChoiceField(choices=CURRENCY_CODES, allow_null=True)
    amount = serializers.IntegerField(allow_null=True, help_text="Gross: net + fee.")
    fee = serializers.IntegerField(allow_null=True, help_text="What Clearhouse earned in the same movement.")
    net = serializers.IntegerField(allow_null=True, help_text="Change of your posted balances.")
    pending = serializers.IntegerField(allow_null=True, help_text="Change of your held balance.")
    lines = BalanceLineSerializer(many=True, help_text="Each of your accounts' change.")
    livemode = serializers.BooleanField(help_text="True for live-mode movements.")
    created = serializers.DateTimeField(help_text="When it was posted (ISO 8601, UTC).")


PaymentListSerializer = list_of(PaymentSerializer, "PaymentListSerializer")
BalanceTransactionListSerializer = list_of(BalanceTransactionSerializer, "BalanceTransactionListSerializer")
RefundListSerializer = list_of(RefundSerializer, "RefundListSerializer")
EventListSerializer = list_of(EventSerializer, "EventListSerializer")
