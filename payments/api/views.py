"""Payments endpoints under /v1 (thin: validate → one service or selector → render)."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from payments import selectors, services
from payments.api.idempotency import idempotent
from payments.api.pagination import paginate
from payments.api.serializers import PaymentCaptureSerializer, PaymentCreateSerializer, PaymentVoidSerializer
from payments.representations import payment_to_dict


class PaymentListCreateView(APIView):
    """`POST /v1/payments` accepts a payment (202); `GET /v1/payments` lists them, newest first."""

    @idempotent
    def post(self, request: Request) -> Response:
        """Accept a payment: 202 with the payment in `processing`. The worker authorizes (and, for
        `automatic`, captures) it; follow it with `GET /v1/payments/{id}` or webhooks.

        Errors: 400 `validation_error`, `idempotency_key_missing`, `idempotency_key_invalid`, `pan_not_allowed`;
        401; 409 `idempotency_key_in_use`; 415; 422 `idempotency_key_reused`.
        """
        serializer = PaymentCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data: dict[str, Any] = serializer.validated_data
        customer = data.get("customer") or {}
        payment = services.payment_create(
            merchant=request.user.merchant,
            mode=request.user.mode,
            amount=data["amount"],
            currency=data["currency"],
            payment_method=data["payment_method"],
            capture_method=data["capture_method"],
            description=data["description"],
            metadata=data["metadata"],
            customer_email=customer.get("email") or "",
            customer_ip=customer.get("ip") or None,
        )
        return Response(payment_to_dict(payment), status=202)

    def get(self, request: Request) -> Response:
        """List the merchant's payments, newest first (cursor paging: limit, starting_after, ending_before)."""
        qs = selectors.payment_list(merchant=request.user.merchant, mode=request.user.mode)
        return Response(paginate(request, qs, payment_to_dict))


class PaymentDetailView(APIView):
    """`GET /v1/payments/{id}`: one payment; 404 `not_found` for unknown ids and other merchants' payments."""

    def get(self, request: Request, payment_id: str) -> Response:
        payment = selectors.payment_get(merchant=request.user.merchant, mode=request.user.mode, payment_id=payment_id)
        return Response(payment_to_dict(payment))


class PaymentCaptureView(APIView):
    """`POST /v1/payments/{id}/capture`: capture an `authorized` (manual) payment, fully or partly. 202."""

    @idempotent
    def post(self, request: Request, payment_id: str) -> Response:
        """Errors: 400 `validation_error`/`amount_invalid`; 404 `not_found`; 409 `payment_invalid_state`."""
        serializer = PaymentCaptureSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        payment = services.payment_capture(
            merchant=request.user.merchant,
            mode=request.user.mode,
            payment_id=payment_id,
            amount_to_capture=serializer.validated_data.get("amount_to_capture"),
        )
        return Response(payment_to_dict(payment), status=202)


class PaymentVoidView(APIView):
    """`POST /v1/payments/{id}/void`: void an `authorized`, uncaptured payment, releasing the hold. 202."""

    @idempotent
    def post(self, request: Request, payment_id: str) -> Response:
        """Errors: 400 `validation_error`; 404 `not_found`; 409 `payment_invalid_state`."""
        serializer = PaymentVoidSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        payment = services.payment_void(
            merchant=request.user.merchant,
            mode=request.user.mode,
            payment_id=payment_id,
            reason=serializer.validated_data.get("reason", ""),
        )
        return Response(payment_to_dict(payment), status=202)
