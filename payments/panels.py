"""Panels on the payment's admin page: how fraud, webhooks and reconciliation show their records there.

The payment page composes records of apps payments may not import: those apps register a *panel provider* from
their own admin module (`register_payment_panel`), and the page renders whatever is registered. This module is
part of the payments app's public face.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest


@dataclass(frozen=True, kw_only=True)
class Panel:
    """A table on the payment page: `title`, column names, rows of cells (text, or HTML made with format_html),
    `empty` (shown when there are no rows) and `order` (panels are sorted by it)."""

    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]
    empty: str = "None."
    order: int = 100


#: `(request, payment_id) → Panel | None`: a provider gets the payment's id (`pay_…`), never the model.
PanelProvider = Callable[[HttpRequest, str], Panel | None]
_panel_providers: list[PanelProvider] = []


def register_payment_panel(provider: PanelProvider) -> PanelProvider:
    """Register a function `(request, payment_id) → Panel | None` whose panel the payment page shows (return None
    when the user may not see it). Call at import time of an app's admin module; usable as a decorator."""
    if provider not in _panel_providers:
        _panel_providers.append(provider)
    return provider


def payment_panels(request: HttpRequest, payment_id: str) -> list[Panel]:
    """The panels every registered provider gives for the payment `payment_id` and `request.user`, in `order`."""
    panels = [p for p in (provider(request, payment_id) for provider in _panel_providers) if p is not None]
    return sorted(panels, key=lambda p: p.order)
