"""Payments endpoints under /v1 (thin: validate → one service or selector → render).

Mutating endpoints run through config.platform.idempotency.execution.execute (Idempotency-Key, replays, crash recovery,
`Prefer: wait`); reads go through payments.selectors, which scope every query to the caller's merchant and mode.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from config.platform.http import openapi as shared_openapi
from config.platform.http.base import MerchantAPIView
from config.platform.http.pagination import PAGING_PARAMS, paginate
from config.platform.http.rendering import Rendered
from config.platform.idempotency.execution import Resource, execute
from payments import selectors, services
from payments.api import openapi
from payments.api.serializers import PaymentCaptureSerializer, PaymentCreateSerializer, PaymentVoidSerializer
from payments.models import PAYMENT_IN_FLIGHT, Payment
from payments.representations import payment_to_dict

PAYMENT = Resource(
    type="payment",
    load=lambda payment_id: Payment.objects.get(pk=payment_id),
    render=payment_to_dict,
    in_flight=lambda payment: payment.status in PAYMENT_IN_FLIGHT,
)

_PAYMENT_EXAMPLE = {
    "id": "pay_01jd3k4m5n6p7q8r9s0t1v2w3x",
    "object": "payment",
    "status": "processing",
    "amount": 2599,
    "amount_capturable": 0,
    "amount_captured": 0,
    "amount_refunded": 0,
    "amount_refundable": 0,
    "currency": "EUR",
    "capture_method": "automatic",
    "payment_method": {"token": "tok_visa", "card": None},
    "description": "Order 1001",
    "metadata": {"order_id": "1001"},
    "customer": {"email": "ada@example.com", "ip": "203.0.113.7"},
    "processor": "sandbox",
    "psp_reference": None,
    "failure_code": None,
    "failure_message": None,
    "void_reason": None,
    "livemode": False,
    "created": "2026-11-20T12:00:00.123456Z",
    "authorized_at": None,
    "captured_at": None,
    "voided_at": None,
    "expires_at": None,
    "expired_at": None,
}
_CAPTURED_EXAMPLE = _PAYMENT_EXAMPLE | {
    "status": "captured",
    "amount_captured": 2599,
    "amount_refundable": 2599,
    "payment_method": {
        "token": "tok_visa",
        "card": {"brand": "visa", "bin": "424242", "last4": "4242", "country": "US"},
    },
    "psp_reference": "8816178914923451",
    "authorized_at": "2026-11-20T12:00:00.301234Z",
    "captured_at": "2026-11-20T12:00:00.412345Z",
}
_PAYMENT_ID = OpenApiParameter("payment_id", str, OpenApiParameter.PATH, description="The payment's id (`pay_…`).")


def _payment_responses(*, done: int, done_text: str, accepted_text: str) -> dict[Any, Any]:
    return {
        done: OpenApiResponse(
            openapi.PaymentSerializer,
            description=done_text,
            examples=[OpenApiExample("settled", value=_CAPTURED_EXAMPLE, response_only=True, status_codes=[str(done)])],
        ),
        202: OpenApiResponse(
            openapi.PaymentSerializer,
            description=accepted_text,
            examples=[OpenApiExample("accepted", value=_PAYMENT_EXAMPLE, response_only=True, status_codes=["202"])],
        ),
        **shared_openapi.problems(*shared_openapi.WRITE_PROBLEMS),
    }


class PaymentListCreateView(MerchantAPIView):
    """`POST /v1/payments` accepts a payment (202); `GET /v1/payments` lists them, newest first."""

    query_params = {"GET": PAGING_PARAMS}

    @extend_schema(
        operation_id="payments_create",
        summary="Create a payment",
        tags=["Payments"],
        request=PaymentCreateSerializer,
        parameters=[shared_openapi.IDEMPOTENCY_KEY, shared_openapi.PREFER],
        examples=[
            OpenApiExample(
                "automatic capture",
                request_only=True,
                value={
                    "amount": 2599,
                    "currency": "EUR",
                    "payment_method": "tok_visa",
                    "description": "Order 1001",
                    "metadata": {"order_id": "1001"},
                    "customer": {"email": "ada@example.com", "ip": "203.0.113.7"},
                },
            ),
            OpenApiExample(
                "manual capture",
                request_only=True,
                value={
                    "amount": 5000,
                    "currency": "EUR",
                    "payment_method": "tok_mastercard",
                    "capture_method": "manual",
                },
            ),
        ],
        responses=_payment_responses(
            done=201,
            done_text="With `Prefer: wait=N`, the payment reached a final state in time: `captured`, `authorized` "
            "(manual capture) or `failed`.",
            accepted_text="Accepted: the payment is `processing`; the worker authorizes (and, for `automatic`, "
            "captures) it. Follow it with GET or webhooks.",
        ),
    )
    def post(self, request: Request) -> HttpResponse:
        """Accept a payment: 202 with the payment in `processing` (201 with the final payment when `Prefer: wait`
        saw it finish). Never calls the processor.

        Errors: 400 `validation_error`, `invalid_json`, `idempotency_key_missing`, `idempotency_key_invalid`,
        `pan_not_allowed`; 401; 409 `idempotency_key_in_use`; 413; 415; 422 `idempotency_key_reused`; 429.
        """

        def perform(data: dict[str, Any]) -> Rendered[Payment]:
            customer = data.get("customer") or {}
            return services.payment_create(
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

        return execute(
            request,
            serializer_class=PaymentCreateSerializer,
            perform=perform,
            resource=PAYMENT,
            done_status=201,
            waitable=True,
        )

    @extend_schema(
        operation_id="payments_list",
        summary="List payments",
        tags=["Payments"],
        parameters=shared_openapi.paging_parameters(),
        responses={
            200: OpenApiResponse(openapi.PaymentListSerializer, description="A page of payments."),
            **shared_openapi.problems(*shared_openapi.READ_PROBLEMS),
        },
    )
    def get(self, request: Request) -> Response:
        """List the merchant's payments in the key's mode, newest first (cursor paging: `limit` 1–100,
        `starting_after`, `ending_before`). Errors: 400 `validation_error`; 401; 429."""
        qs = selectors.payment_list(merchant=request.user.merchant, mode=request.user.mode)
        return Response(paginate(request, qs, payment_to_dict))


class PaymentDetailView(MerchantAPIView):
    """`GET /v1/payments/{id}`: one payment; 404 `not_found` for unknown ids and other merchants' payments."""

    @extend_schema(
        operation_id="payments_retrieve",
        summary="Retrieve a payment",
        tags=["Payments"],
        parameters=[_PAYMENT_ID],
        responses={
            200: OpenApiResponse(openapi.PaymentSerializer, description="The payment."),
            **shared_openapi.problems(*shared_openapi.READ_PROBLEMS, 404),
        },
    )
    def get(self, request: Request, payment_id: str) -> Response:
        """One payment. Errors: 401; 404 `not_found` (also for another merchant's or mode's payment); 429."""
        payment = selectors.payment_get(merchant=request.user.merchant, mode=request.user.mode, payment_id=payment_id)
        return Response(payment_to_dict(payment))


class PaymentCaptureView(MerchantAPIView):
    """`POST /v1/payments/{id}/capture`: capture an `authorized` (manual) payment, fully or partly. 202."""

    @extend_schema(
        operation_id="payments_capture",
        summary="Capture a payment",
        tags=["Payments"],
        request=PaymentCaptureSerializer,
        parameters=[_PAYMENT_ID, shared_openapi.IDEMPOTENCY_KEY, shared_openapi.PREFER],
        examples=[OpenApiExample("partial capture", request_only=True, value={"amount_to_capture": 4000})],
        responses=_payment_responses(
            done=200,
            done_text="With `Prefer: wait=N`, the processor answered in time: `captured`, or `authorized` again "
            "with `failure_code` when it refused.",
            accepted_text="Accepted: the payment is `capturing`.",
        ),
    )
    def post(self, request: Request, payment_id: str) -> HttpResponse:
        """Capture all of an authorized payment, or `amount_to_capture` minor units of it (the rest of the hold is
        released). A second capture is refused. Errors: 400 `validation_error`, `amount_invalid`; 404 `not_found`;
        409 `payment_invalid_state`, `idempotency_key_in_use`; 422 `idempotency_key_reused`."""
        return execute(
            request,
            serializer_class=PaymentCaptureSerializer,
            perform=lambda data: services.payment_capture(
                merchant=request.user.merchant,
                mode=request.user.mode,
                payment_id=payment_id,
                amount_to_capture=data.get("amount_to_capture"),
            ),
            resource=PAYMENT,
            done_status=200,
            waitable=True,
        )


class PaymentVoidView(MerchantAPIView):
    """`POST /v1/payments/{id}/void`: void an `authorized`, uncaptured payment, releasing the hold. 202."""

    @extend_schema(
        operation_id="payments_void",
        summary="Void a payment",
        tags=["Payments"],
        request=PaymentVoidSerializer,
        parameters=[_PAYMENT_ID, shared_openapi.IDEMPOTENCY_KEY, shared_openapi.PREFER],
        examples=[OpenApiExample("void", request_only=True, value={"reason": "requested_by_customer"})],
        responses=_payment_responses(
            done=200,
            done_text="With `Prefer: wait=N`, the processor answered in time: `voided`, or `authorized` again with "
            "`failure_code` when it refused.",
            accepted_text="Accepted: the payment is `voiding`.",
        ),
    )
    def post(self, request: Request, payment_id: str) -> HttpResponse:
        """Void an authorized payment that was not captured. Errors: 400 `validation_error`; 404 `not_found`;
        409 `payment_invalid_state` (e.g. already captured), `idempotency_key_in_use`; 422."""
        return execute(
            request,
            serializer_class=PaymentVoidSerializer,
            perform=lambda data: services.payment_void(
                merchant=request.user.merchant,
                mode=request.user.mode,
                payment_id=payment_id,
                reason=data.get("reason", ""),
            ),
            resource=PAYMENT,
            done_status=200,
            waitable=True,
        )
