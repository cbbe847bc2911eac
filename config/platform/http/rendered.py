"""`Rendered`: an object together with its API form, rendered once.

A service that records an event about the object it changed renders the object's API form for the event's
snapshot (`data.object`). Returning that same dict with the object lets the endpoint answer with it
(config.platform.idempotency.execution.execute) instead of rendering the object a second time, so the answer's
body is the event's snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class Rendered(Generic[T]):
    """`obj` and `body`, its API form as rendered when the change was recorded (callers must not change either)."""

    obj: T
    body: dict[str, Any]
