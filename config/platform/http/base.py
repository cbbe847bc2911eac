"""The base class of every `/v1` endpoint: API-key authentication, the merchant's rate limits, and strict input.

Strict input: a query parameter the endpoint does not declare in `query_params` (per HTTP method) is refused with
400 `validation_error` naming it, as unknown body fields are (config.platform.http.fields.StrictSerializer).
"""

from __future__ import annotations

from typing import Any, ClassVar

from rest_framework.request import Request
from rest_framework.views import APIView

from config.platform.http.problems import ValidationProblem


class MerchantAPIView(APIView):
    """An endpoint called with a merchant's secret key. `request.user` is a MerchantPrincipal (merchant, mode).

    `query_params` maps an HTTP method to the query parameters it accepts (none when absent).
    """

    query_params: ClassVar[dict[str, frozenset[str]]] = {}

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        """DRF's checks (authentication, permissions, rate limits), then refuse undeclared query parameters."""
        super().initial(request, *args, **kwargs)
        allowed = self.query_params.get(request.method or "GET", frozenset())
        unknown = sorted(set(request.query_params) - allowed)
        if unknown:
            raise ValidationProblem(
                [{"field": name, "code": "unknown_parameter", "detail": "Unknown query parameter."} for name in unknown]
            )
