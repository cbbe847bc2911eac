"""Refund endpoints: `POST /v1/refunds`, `GET /v1/refunds`, `GET /v1/refunds/{id}` (thin views).

Refunds run asynchronously: the API stores the refund `pending` and the worker asks the processor
(payments.handlers); `Prefer: wait=N` holds the answer until it `succeeded` or `failed`.
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
from config.platform.http.problems import ValidationProblem
from config.platform.http.rendering import Rendered
from config.platform.idempotency.execution import Resource, execute
from payments import selectors, services
from payments.api import openapi
from payments.api.serializers import RefundCreateSerializer
from payments.models import Refund, RefundStatus
from payments.representations import refund_to_dict

REFUND = Resource(
    type="refund",
    load=lambda refund_id: Refund.objects.get(pk=refund_id),
    render=refund_to_dict,
    in_flight=lambda refund: refund.status == RefundStatus.PENDING,
)

_REFUND_EXAMPLE = {
    "id": "re_01jd3m7q8r9s0t1v2w3x4y5z6a",
    "object": "refund",
    "payment": "pay_01jd3k4m5n6p7q8r9s0t1v2w3x",
    "status": "pending",
    "amount": 1000,
    "currency": "EUR",
    "reason": "requested_by_customer",
    "metadata": {},
    "psp_reference": None,
    "failure_code": None,
    "failure_message": None,
    "livemode": False,
    "created": "2026-11-21T09:30:00.000000Z",
    "succeeded_at": None,
    "failed_at": None,
}


class RefundListCreateView(MerchantAPIView):
    """`POST /v1/refunds` requests a refund (202 `pending`); `GET /v1/refunds` lists refunds, newest first."""

    query_params = {"GET": PAGING_PARAMS | {"payment"}}

    @extend_schema(
        operation_id="refunds_create",
        summary="Refund a payment",
        tags=["Refunds"],
        request=RefundCreateSerializer,
        parameters=[shared_openapi.IDEMPOTENCY_KEY, shared_openapi.PREFER],
        examples=[
            OpenApiExample(
                "partial refund",
                request_only=True,
                value={"payment": "pay_01jd3k4m5n6p7q8r9s0t1v2w3x", "amount": 1000, "reason": "requested_by_customer"},
            ),
            OpenApiExample("full refund", request_only=True, value={"payment": "pay_01jd3k4m5n6p7q8r9s0t1v2w3x"}),
        ],
        responses={
            201: OpenApiResponse(
                openapi.RefundSerializer,
                description="With `Prefer: wait=N`, the processor answered in time: `succeeded` or `failed`.",
                examples=[
                    OpenApiExample(
                        "succeeded",
                        response_only=True,
                        status_codes=["201"],
                        value=_REFUND_EXAMPLE
                        | {
                            "status": "succeeded",
                            "psp_reference": "8816178914923999",
                            "succeeded_at": "2026-11-21T09:30:00.250000Z",
                        },
                    )
                ],
            ),
            202: OpenApiResponse(
                openapi.RefundSerializer,
                description="Accepted: the refund is `pending`; its amount is reserved on the payment.",
                examples=[OpenApiExample("pending", response_only=True, status_codes=["202"], value=_REFUND_EXAMPLE)],
            ),
            **shared_openapi.problems(*shared_openapi.WRITE_PROBLEMS),
        },
    )
    def post(self, request: Request) -> HttpResponse:
        """Refund `amount` minor units (default: everything still refundable) of a captured payment. Refunds may
        be partial and several, never above what was captured, even in parallel. Errors: 400
        `validation_error`, `amount_invalid` (over what is refundable); 404 `not_found` (unknown payment);
        409 `payment_invalid_state` (not captured, or fully refunded), `idempotency_key_in_use`; 422."""

        def perform(data: dict[str, Any]) -> Rendered[Refund]:
            return services.refund_create(
                merchant=request.user.merchant,
                mode=request.user.mode,
                payment_id=data["payment"],
                amount=data.get("amount"),
                reason=data.get("reason", ""),
                metadata=data["metadata"],
            )

        return execute(
            request,
            serializer_class=RefundCreateSerializer,
            perform=perform,
            resource=REFUND,
            done_status=201,
            waitable=True,
        )

    @extend_schema(
        operation_id="refunds_list",
        summary="List refunds",
        tags=["Refunds"],
        parameters=[
            *shared_openapi.paging_parameters(),
            OpenApiParameter("payment", str, description="Only the refunds of this payment (`pay_…`)."),
        ],
        responses={
            200: OpenApiResponse(openapi.RefundListSerializer, description="A page of refunds."),
            **shared_openapi.problems(*shared_openapi.READ_PROBLEMS),
        },
    )
    def get(self, request: Request) -> Response:
        """List the merchant's refunds in the key's mode, newest first, optionally of one `payment`.
        Errors: 400 `validation_error`; 401; 429."""
        payment_id = request.query_params.get("payment")
        if payment_id is not None and not payment_id:
            raise ValidationProblem([{"field": "payment", "code": "blank", "detail": "Must be a payment id."}])
        qs = selectors.refund_list(merchant=request.user.merchant, mode=request.user.mode, payment_id=payment_id)
        return Response(paginate(request, qs, refund_to_dict))


class RefundDetailView(MerchantAPIView):
    """`GET /v1/refunds/{id}`: one refund; 404 for unknown ids and other merchants' refunds."""

    @extend_schema(
        operation_id="refunds_retrieve",
        summary="Retrieve a refund",
        tags=["Refunds"],
        parameters=[OpenApiParameter("refund_id", str, OpenApiParameter.PATH, description="The refund's id (`re_…`).")],
        responses={
            200: OpenApiResponse(openapi.RefundSerializer, description="The refund."),
            **shared_openapi.problems(*shared_openapi.READ_PROBLEMS, 404),
        },
    )
    def get(self, request: Request, refund_id: str) -> Response:
        """One refund. Errors: 401; 404 `not_found` (also for another merchant's or mode's refund); 429."""
        refund = selectors.refund_get(merchant=request.user.merchant, mode=request.user.mode, refund_id=refund_id)
        return Response(refund_to_dict(refund))
