"""The no-op Celery task of the relay scenario: Celery's own per-task ceiling on the same broker and workers."""

from __future__ import annotations

from celery import shared_task

NOOP_TASK = "bench.tasks.noop"


@shared_task(name=NOOP_TASK, acks_late=True, ignore_result=True)
def noop() -> None:
    """Do nothing (acknowledged after it ran, like the outbox drain task)."""
    return None
