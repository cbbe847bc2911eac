"""Celery tasks of payments (thin: they call a service). Outbox and idempotency tasks live with those parts."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="payments.tasks.authorizations_expire", acks_late=True, ignore_result=True)
def authorizations_expire() -> int:
    """Periodic (Celery beat): expire uncaptured authorizations past their `expires_at`. Returns how many."""
    from payments import services

    return services.payments_expire_due()
