"""Frozen dataclasses that carry payments data across the app boundary: other apps read these, never the models.

- EventRecord: one public event (`payment.captured`, …) as stored, for the apps that deliver events (webhooks).
  Read it with payments.selectors.event_get_for_delivery; turn it into the JSON merchants receive with
  payments.events.event_record_to_dict.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, kw_only=True)
class EventRecord:
    """A public event: `id` (`evt_…`), `type` (a key of payments.events.PUBLIC_EVENT_TYPES), the `merchant_id` and
    `mode` (`test` | `live`) it belongs to, `created_at` (aware, UTC), `request_id` (of the API request or outbox
    row that caused it; empty when none) and `data_object`, the snapshot of its object's API form when it
    happened (the event's `data.object`; read it, never change it)."""

    id: str
    type: str
    merchant_id: str
    mode: str
    created_at: dt.datetime
    request_id: str
    data_object: dict[str, Any]

    @property
    def livemode(self) -> bool:
        """True for a live-mode event, False in test mode."""
        return self.mode == "live"
