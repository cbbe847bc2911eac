"""Celery tasks of reconciliation: the nightly run (scheduled by Celery beat: CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

import datetime as dt

import structlog
from celery import shared_task
from django.utils import timezone

from reconciliation.services import reconcile

log = structlog.get_logger(__name__)


@shared_task(name="reconciliation.tasks.reconcile_nightly", acks_late=True, ignore_result=True)
def reconcile_nightly(day: str | None = None) -> int:
    """Reconcile the default processor's report of `day` (YYYY-MM-DD; default: yesterday, UTC).

    Returns the number of open discrepancies of that day and logs `reconciliation.discrepancies_open` (warning)
    when there are any. Raises what reconcile raises (the task fails visibly; beat runs it again next night).
    """
    report_day = dt.date.fromisoformat(day) if day else timezone.now().date() - dt.timedelta(days=1)
    result = reconcile(day=report_day)
    if result.open_discrepancies:
        log.warning(
            "reconciliation.discrepancies_open", day=report_day.isoformat(), count=len(result.open_discrepancies)
        )
    return len(result.open_discrepancies)
