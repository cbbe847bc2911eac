"""Celery tasks of the outbox: thin wrappers around config.platform.outbox.engine.

The task names keep the `payments.tasks.` prefix they had before the outbox moved out of the payments app, so
messages already in a broker queue during an upgrade still find their task. Nothing imports this module: the
engine sends `outbox_drain` by name, beat schedules the others by name (config/settings/base.py).
"""

from __future__ import annotations

from celery import shared_task

from config.platform.outbox import engine


@shared_task(name=engine.DRAIN_TASK, acks_late=True, ignore_result=True)
def outbox_drain() -> int:
    """Claim and handle due outbox rows for up to OUTBOX_DRAIN_BUDGET seconds. Returns rows handled."""
    return engine.drain()


@shared_task(name="payments.tasks.outbox_sweep", acks_late=True, ignore_result=True)
def outbox_sweep() -> int:
    """Periodic (Celery beat): drain if any row is due. Picks up rows whose nudge was lost (broker down)."""
    if not engine.has_due_work():
        return 0
    return engine.drain()


@shared_task(name="payments.tasks.outbox_reap", acks_late=True, ignore_result=True)
def outbox_reap() -> int:
    """Periodic (Celery beat): delete outbox rows handled more than OUTBOX_DONE_RETENTION seconds ago."""
    return engine.reap_done()
