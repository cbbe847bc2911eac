"""How every `/v1` answer writes values that JSON has no type for: timestamps."""

from __future__ import annotations

from datetime import datetime


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a `Z` suffix (`2026-11-20T12:00:00.123456Z`; RFC 3339), or None."""
    return value.isoformat().replace("+00:00", "Z") if value is not None else None
