"""Celery tasks: thin wrappers that drain the transactional outbox (payments.outbox)."""

from __future__ import annotations

from celery import shared_task

from payments import outbox


@shared_task(name="payments.tasks.outbox_drain", acks_late=True, ignore_result=True)
def outbox_drain() -> int:
    """Claim and handle due outbox rows for up to OUTBOX_DRAIN_BUDGET seconds. Returns rows handled."""
    return outbox.drain()


@shared_task(name="payments.tasks.outbox_sweep", acks_late=True, ignore_result=True)
def outbox_sweep() -> int:
    """Periodic (Celery beat): drain if any row is due. Picks up rows whose nudge was lost (broker down)."""
    if not outbox.has_due_work():
        return 0
    return outbox.drain()


@shared_task(name="payments.tasks.outbox_reap", acks_late=True, ignore_result=True)
def outbox_reap() -> int:
    """Periodic (Celery beat): delete outbox rows handled more than OUTBOX_DONE_RETENTION seconds ago."""
    return outbox.reap_done()


@shared_task(name="payments.tasks.authorizations_expire", acks_late=True, ignore_result=True)
def authorizations_expire() -> int:
    """Periodic (Celery beat): expire uncaptured authorizations past their `expires_at`. Returns how many."""
    from payments import services

    return services.payments_expire_due()


@shared_task(name="payments.tasks.idempotency_keys_reap", acks_late=True, ignore_result=True)
def idempotency_keys_reap() -> int:
    """Periodic (Celery beat): delete idempotency keys older than IDEMPOTENCY_KEY_TTL. Returns rows deleted."""
    from payments import services

    return services.idempotency_keys_reap()
