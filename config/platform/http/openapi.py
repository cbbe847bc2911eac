"""The shared pieces of the `/v1` OpenAPI description (drf-spectacular) that every app's endpoints use.

Authentication (the API key as a bearer token), the RFC 9457 problem document with one example per code, the
Idempotency-Key and Prefer parameters, paging parameters, list pages, the response headers every answer carries,
and the postprocessing hook that closes every object (`additionalProperties: false`) except problem documents
(RFC 9457 §3.2 allows extension members), so the schemathesis run in the test suite fails when a response carries
an undocumented field. The payment-specific shapes are in payments.api.openapi.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse
from rest_framework import serializers

from config.platform.http.pagination import DEFAULT_LIMIT, MAX_LIMIT
from config.platform.http.problems import PROBLEM_CONTENT_TYPE

# --- Authentication -------------------------------------------------------------------------------------------


class ApiKeyAuthScheme(OpenApiAuthenticationExtension):
    """Documents config.platform.merchants.authentication.ApiKeyAuthentication as HTTP bearer authentication."""

    target_class = "config.platform.merchants.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        """The OpenAPI security scheme: `Authorization: Bearer sk_test_…` or `sk_live_…`."""
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "sk_test_… | sk_live_…",
            "description": "Your secret API key. Test keys see only test-mode objects, live keys only live ones.",
        }


# --- Problem documents and list pages -----------------------------------------------------------------------


class FieldErrorSerializer(serializers.Serializer):
    """One invalid input of a 400 `validation_error`."""

    field = serializers.CharField(help_text="The offending field, dotted for nested ones (`customer.email`).")
    code = serializers.CharField(help_text="Why: `required`, `invalid`, `unknown_field`, `max_length`…")
    detail = serializers.CharField(help_text="A human-readable explanation.")


class ProblemSerializer(serializers.Serializer):
    """An RFC 9457 problem document (`application/problem+json`)."""

    type = serializers.CharField(help_text="A URI reference naming the problem type: `/problems/<code>`.")
    title = serializers.CharField(help_text="A short summary of the problem type.")
    status = serializers.IntegerField(help_text="The HTTP status code.")
    detail = serializers.CharField(help_text="What went wrong with this request.")
    code = serializers.CharField(help_text="A stable machine code (see docs/api.md, Errors).")
    errors = FieldErrorSerializer(many=True, required=False, help_text="For `validation_error`: each bad input.")
    param = serializers.CharField(required=False, help_text="The parameter the problem is about, when there is one.")
    payment_status = serializers.CharField(
        required=False, help_text="For `payment_invalid_state`: the payment's current status."
    )


def list_of(item: type[serializers.Serializer], name: str) -> type[serializers.Serializer]:
    """A page of a cursor-paged list of `item` objects (newest first)."""
    return type(
        name,
        (serializers.Serializer,),
        {
            "__doc__": f"A page of {item.__name__.removesuffix('Serializer').lower()}s, newest first.",
            "object": serializers.ChoiceField(choices=["list"]),
            "url": serializers.CharField(help_text="The list's path."),
            "has_more": serializers.BooleanField(help_text="True when another page follows in this direction."),
            "data": item(many=True, help_text="The objects of this page, newest first."),
        },
    )


# --- Headers and parameters ------------------------------------------------------------------------------------

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"\S"},
    OpenApiParameter.HEADER,
    required=True,
    description="A unique value (a UUID) per operation, 1–255 characters, scoped to your merchant and mode "
    "(draft-ietf-httpapi-idempotency-key-header). Retrying with the same key and body replays the first answer; "
    "a different body under the key is 422, a key still in progress 409.",
    examples=[OpenApiExample("uuid", value="5f1b3c1e-0f7e-4a8e-9d3a-0d7b0c9e2a41")],
)
PREFER = OpenApiParameter(
    "Prefer",
    str,
    OpenApiParameter.HEADER,
    description="`wait=N` (RFC 7240): hold the answer up to N seconds (at most 10) until the worker has a final "
    "result. Finished in time: 200/201 with the final object; otherwise 202 as without the header. Other "
    "preferences are ignored.",
    examples=[OpenApiExample("wait five seconds", value="wait=5")],
)

_INT_HEADER = {"type": "string", "pattern": r"^[0-9]+$"}

#: Response headers added to every documented response by the `finish_schema` hook: (name, schema, description,
#: which responses carry it: "all", "post" (mutating operations), or a status code).
RESPONSE_HEADERS: list[tuple[str, dict[str, Any], str, str | int]] = [
    (
        "Request-Id",
        {"type": "string"},
        "The id under which this request was logged (your `X-Request-ID` if sent).",
        "all",
    ),
    (
        "RateLimit-Limit",
        _INT_HEADER,
        "Requests of this budget (read or write) allowed in a burst (draft-ietf-httpapi-ratelimit-headers-06).",
        "all",
    ),
    ("RateLimit-Remaining", _INT_HEADER, "Requests left in the burst.", "all"),
    ("RateLimit-Reset", _INT_HEADER, "Seconds until the full burst is available again.", "all"),
    (
        "RateLimit-Policy",
        {"type": "string"},
        "`<burst>;w=<seconds>`: the burst and how long refilling it from empty takes.",
        "all",
    ),
    (
        "Idempotent-Replayed",
        {"type": "string", "enum": ["true"]},
        "`true` when this answer is the stored answer to an earlier request with the same Idempotency-Key.",
        "post",
    ),
    ("Retry-After", _INT_HEADER, "Seconds to wait before retrying (RFC 9110 §10.2.3).", 409),
    ("Retry-After", _INT_HEADER, "Seconds until the rate limit lets a request through (RFC 9110 §10.2.3).", 429),
    ("WWW-Authenticate", {"type": "string"}, '`Bearer realm="clearhouse"` (RFC 6750).', 401),
]


def paging_parameters() -> list[OpenApiParameter]:
    """`limit`, `starting_after`, `ending_before` (cursor paging, newest first)."""
    return [
        OpenApiParameter(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
            description=f"Page size, 1–{MAX_LIMIT} (default {DEFAULT_LIMIT}).",
        ),
        OpenApiParameter(
            "starting_after", str, description="An object id: the page of older objects after it (next page)."
        ),
        OpenApiParameter(
            "ending_before", str, description="An object id: the page of newer objects before it (previous page)."
        ),
    ]


# --- Problems ---------------------------------------------------------------------------------------------------

#: One example per problem code: (status, title, detail). docs/api.md lists the same codes.
PROBLEM_EXAMPLES: dict[str, tuple[int, str, str]] = {
    "validation_error": (400, "Invalid request", "Invalid value for: amount."),
    "invalid_json": (400, "Malformed JSON", "JSON parse error - Expecting value: line 1 column 1 (char 0)"),
    "pan_not_allowed": (400, "Card numbers are not accepted", "The request contains what looks like a card number."),
    "amount_invalid": (400, "Invalid amount", "amount_to_capture must be between 1 and 5000."),
    "idempotency_key_missing": (400, "Idempotency-Key required", "Send an `Idempotency-Key` header with every POST."),
    "idempotency_key_invalid": (400, "Invalid Idempotency-Key", "`Idempotency-Key` must be 1 to 255 characters."),
    "authentication_required": (401, "Authentication required", "Send your secret API key as a Bearer token."),
    "invalid_api_key": (401, "Invalid API key", "The API key is not valid or was revoked."),
    "not_found": (404, "Not found", "No such payment: pay_01jd3k4m5n6p7q8r9s0t1v2w3x"),
    "payment_invalid_state": (409, "Payment is in the wrong state", "Payment pay_… is captured; it does not allow …"),
    "idempotency_key_in_use": (409, "Request in progress", "A request with this Idempotency-Key is still running."),
    "payload_too_large": (413, "Request body too large", "The request body may be at most 65536 bytes."),
    "unsupported_media_type": (415, "Unsupported media type", "Send the request body as application/json."),
    "idempotency_key_reused": (
        422,
        "Idempotency key reused",
        "This Idempotency-Key was used with a different request.",
    ),
    "rate_limited": (429, "Too many requests", "Request was throttled. Expected available in 1 second."),
}

_DESCRIPTIONS = {
    400: "Invalid input: nothing was stored.",
    401: "No API key, or an unknown or revoked one.",
    404: "No such object for this merchant and mode.",
    406: "The Accept header names no type we can produce.",
    409: "The object's state forbids this, or the Idempotency-Key is in use.",
    413: "The body is over the size limit.",
    415: "The body is not JSON.",
    422: "The Idempotency-Key was used with a different request.",
    429: "Over the rate limit; retry after Retry-After seconds.",
}


def problems(*statuses: int) -> dict[Any, OpenApiResponse]:
    """Problem responses (application/problem+json) for `statuses`, each with an example per code it may carry."""
    responses: dict[Any, OpenApiResponse] = {}
    for status in statuses:
        examples = [
            OpenApiExample(
                code,
                value={"type": f"/problems/{code}", "title": title, "status": s, "detail": detail, "code": code}
                | (
                    {"errors": [{"field": "amount", "code": "invalid", "detail": "Must be an integer."}]}
                    if code == "validation_error"
                    else {}
                ),
                response_only=True,
                status_codes=[str(status)],
                media_type=PROBLEM_CONTENT_TYPE,
            )
            for code, (s, title, detail) in PROBLEM_EXAMPLES.items()
            if s == status
        ]
        responses[(status, PROBLEM_CONTENT_TYPE)] = OpenApiResponse(
            ProblemSerializer, description=_DESCRIPTIONS.get(status, ""), examples=examples
        )
    return responses


READ_PROBLEMS = (400, 401, 406, 429)
WRITE_PROBLEMS = (400, 401, 404, 406, 409, 413, 415, 422, 429)


# --- Schema post-processing ------------------------------------------------------------------------------------


def finish_schema(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook.

    - `additionalProperties: false` on every object component that lists its properties (request bodies refuse
      unknown fields; responses carry only documented ones), except Problem (RFC 9457 §3.2 extensions).
    - The response headers of RESPONSE_HEADERS on every response of every operation they apply to.
    """
    for name, schema in result.get("components", {}).get("schemas", {}).items():
        if name == "Problem":
            continue
        if schema.get("type") == "object" and "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            for status, response in operation.get("responses", {}).items():
                headers = response.setdefault("headers", {})
                for name, schema, description, applies in RESPONSE_HEADERS:
                    if applies == "all" or (applies == "post" and method == "post") or str(applies) == status:
                        headers[name] = {"schema": schema, "description": description}
    return result
