"""Errors raised by reconciliation services."""

from __future__ import annotations


class ReconciliationError(Exception):
    """Base class."""


class DiscrepancyNotFound(ReconciliationError):
    """No discrepancy with that id."""


class DiscrepancyNotOpen(ReconciliationError):
    """The discrepancy is already resolved; a resolution is never overwritten."""
