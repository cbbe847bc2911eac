"""How every `/v1` answer renders: timestamps (which JSON has no type for), and an object rendered once.

A service that records an event about the object it changed renders the object's API form for the event's
snapshot (`data.object`). Returning that same dict with the object, as a `Rendered`, lets the endpoint answer
with it (config.platform.idempotency.execution.execute) instead of rendering the object a second time, so the
answer's body is the event's snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a `Z` suffix (`2026-11-20T12:00:00.123456Z`; RFC 3339), or None."""
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


@dataclass(frozen=True, kw_only=True)
class Rendered(Generic[T]):
    """`obj` and `body`, its API form as rendered when the change was recorded (callers must not change either)."""

    obj: T
    body: dict[str, Any]
