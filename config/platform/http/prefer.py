"""The `Prefer` request header (RFC 7240): only the `wait` preference is honoured (§4.3).

`Prefer: wait=5` asks the server to hold the response up to 5 seconds for the operation to finish. Unknown
preferences and malformed values are ignored, as RFC 7240 §2 requires; the wait is capped at API_PREFER_WAIT_MAX
seconds (10 by default).
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.request import Request

HEADER = "Prefer"


def prefer_wait(request: Request) -> float:
    """Seconds the client asked to wait (`Prefer: wait=N`, N a non-negative integer), capped at
    API_PREFER_WAIT_MAX; 0 when absent or malformed."""
    seconds = 0
    for preference in request.headers.get(HEADER, "").split(","):
        token = preference.split(";", 1)[0]
        name, _, value = token.partition("=")
        if name.strip().lower() != "wait":
            continue
        value = value.strip().strip('"')
        if value.isdigit() and value.isascii():
            seconds = int(value)
    return float(min(seconds, float(settings.API_PREFER_WAIT_MAX)))
