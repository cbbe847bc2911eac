"""Celery task of idempotency keys (the name keeps its old `payments.tasks.` prefix for queued messages)."""

from __future__ import annotations

from celery import shared_task

from config.platform.idempotency import storage


@shared_task(name="payments.tasks.idempotency_keys_reap", acks_late=True, ignore_result=True)
def idempotency_keys_reap() -> int:
    """Periodic (Celery beat): delete idempotency keys older than IDEMPOTENCY_KEY_TTL. Returns rows deleted."""
    return storage.idempotency_keys_reap()
