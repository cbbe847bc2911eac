"""Discrepancies: recording what a run found, closing what a later report of the day no longer shows, the day's
open ones for output, and a person resolving one.

A discrepancy is unique per processor, day, kind and key (reconciliation.matching decides both). Nothing is
deleted: a run records each one once and updates its amounts or status when they move; a discrepancy closed by
`system` (a run no longer found it) is reopened when a later run finds it again, but a person's resolution stands.
Closing and resolving are audited in the same transaction. Amounts are integers in minor units.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from django.db import transaction
from django.utils import timezone

from config.platform.actors import SYSTEM, Actor, clean_reason
from payments.audit import audit_record_write
from reconciliation import matching
from reconciliation.errors import DiscrepancyNotFound, DiscrepancyNotOpen
from reconciliation.models import Discrepancy, DiscrepancyStatus, ReconciliationRun


class Recorded(enum.Enum):
    """What `discrepancy_record` did."""

    OPENED = "opened"  # first found: a new discrepancy
    REOPENED = "reopened"  # closed by `system` earlier, found again
    UPDATED = "updated"  # still open; its amounts, currencies, status or detail moved
    UNCHANGED = "unchanged"  # still open as it was, or resolved by a person (their decision stands)


def discrepancy_to_dict(d: Discrepancy) -> dict[str, Any]:
    """A discrepancy for output: id, kind, key, references, each side's amount (minor units) and currency, our
    status, detail, status and when it was first found."""
    return {
        "id": d.pk,
        "kind": d.kind,
        "key": d.key,
        "payment_id": d.payment_id,
        "row_type": d.row_type,
        "psp_reference": d.psp_reference,
        "modification_reference": d.modification_reference,
        "report_amount": d.report_amount,
        "report_currency": d.report_currency,
        "our_amount": d.our_amount,
        "our_currency": d.our_currency,
        "our_status": d.our_status,
        "detail": d.detail,
        "status": d.status,
        "created_at": d.created_at.isoformat(),
    }


def discrepancy_record(*, found: matching.Found, run: ReconciliationRun) -> Recorded:
    """Record `found` for `run`'s processor and day, in the caller's transaction: create it (first found by
    `run`), update what moved, or reopen it when `system` had closed it. Locks an existing row FOR UPDATE."""
    row = found.row
    values: dict[str, Any] = {
        "payment_id": found.payment_id,
        "row_type": row.type if row else "",
        "psp_reference": row.psp_reference if row else found.psp_reference,
        "modification_reference": row.modification_reference if row else "",
        "report_amount": found.report_amount,
        "report_currency": found.report_currency,
        "our_amount": found.our_amount,
        "our_currency": found.our_currency,
        "our_status": found.our_status[:32],
        "detail": found.detail[:500],
    }
    existing = (
        Discrepancy.objects.select_for_update()
        .filter(processor=run.processor, report_date=run.report_date, kind=found.kind, key=found.key)
        .first()
    )
    if existing is None:
        Discrepancy.objects.create(
            processor=run.processor, report_date=run.report_date, kind=found.kind, key=found.key, run=run, **values
        )
        return Recorded.OPENED
    changed = {k: v for k, v in values.items() if getattr(existing, k) != v}
    recorded = Recorded.UPDATED if changed else Recorded.UNCHANGED
    if existing.status == DiscrepancyStatus.RESOLVED:
        if existing.resolved_by != SYSTEM.username:
            return Recorded.UNCHANGED  # a person resolved it: their decision stands
        changed.update(status=DiscrepancyStatus.OPEN, resolved_at=None, resolved_by="", resolution_note="")
        recorded = Recorded.REOPENED
    if changed:
        for name, value in changed.items():
            setattr(existing, name, value)
        existing.save(update_fields=list(changed))
    return recorded


def discrepancies_close_unfound(*, run: ReconciliationRun, found_keys: set[tuple[str, str]]) -> int:
    """Close, as `system` and audited, the open discrepancies of `run`'s processor and day whose (kind, key) is
    not in `found_keys` (`run`'s report no longer shows them), in the caller's transaction. Locks them FOR
    UPDATE. Returns how many were closed."""
    closed = 0
    now = timezone.now()
    for stale in Discrepancy.objects.select_for_update().filter(
        processor=run.processor, report_date=run.report_date, status=DiscrepancyStatus.OPEN
    ):
        if (stale.kind, stale.key) in found_keys:
            continue
        note = f"Closed: no longer found by run #{run.pk} (report sha256 {run.report_sha256[:12]})."
        stale.status = DiscrepancyStatus.RESOLVED
        stale.resolved_at = now
        stale.resolved_by = SYSTEM.username
        stale.resolution_note = note
        stale.save(update_fields=["status", "resolved_at", "resolved_by", "resolution_note"])
        audit_record_write(
            actor=SYSTEM,
            action="reconciliation.discrepancy_close",
            object_type="discrepancy",
            object_id=str(stale.pk),
            payment_id=stale.payment_id,
            reason=note,
            data={"kind": stale.kind, "key": stale.key, "report_date": run.report_date.isoformat()},
        )
        closed += 1
    return closed


def discrepancy_list_open(*, processor: str, day: dt.date) -> list[dict[str, Any]]:
    """The open discrepancies of `processor` and UTC `day` (found by any run), oldest first, as
    discrepancy_to_dict."""
    open_ones = Discrepancy.objects.filter(processor=processor, report_date=day, status=DiscrepancyStatus.OPEN)
    return [discrepancy_to_dict(d) for d in open_ones.order_by("id")]


@transaction.atomic(durable=True)
def discrepancy_resolve(*, discrepancy_id: int, actor: Actor, note: str) -> Discrepancy:
    """Resolve an open discrepancy with a person's note, audited in the same transaction. Nothing is deleted.

    Raises DiscrepancyNotFound, DiscrepancyNotOpen (already resolved), payments.errors.ReasonRequired (empty
    note).
    """
    note = clean_reason(note)
    discrepancy = Discrepancy.objects.select_for_update().filter(pk=discrepancy_id).first()
    if discrepancy is None:
        raise DiscrepancyNotFound(f"No such discrepancy: {discrepancy_id}")
    if discrepancy.status != DiscrepancyStatus.OPEN:
        raise DiscrepancyNotOpen(f"Discrepancy {discrepancy_id} is already {discrepancy.status}.")
    discrepancy.status = DiscrepancyStatus.RESOLVED
    discrepancy.resolved_at = timezone.now()
    discrepancy.resolved_by = actor.username
    discrepancy.resolution_note = note
    discrepancy.save(update_fields=["status", "resolved_at", "resolved_by", "resolution_note"])
    audit_record_write(
        actor=actor,
        action="reconciliation.discrepancy_resolve",
        object_type="discrepancy",
        object_id=str(discrepancy.pk),
        payment_id=discrepancy.payment_id,
        reason=note,
        data={"kind": discrepancy.kind, "key": discrepancy.key, "report_date": discrepancy.report_date.isoformat()},
    )
    return discrepancy
