"""How long idempotency keys are kept: the reaper of expired keys."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.platform.idempotency.models import IdempotencyKey


def idempotency_keys_reap(*, now: datetime | None = None, batch_size: int = 1000) -> int:
    """Delete idempotency keys older than IDEMPOTENCY_KEY_TTL seconds (24 h by default) at `now` (default: the
    current time), in batches of `batch_size`, each batch its own transaction. Keys still leased to a running
    request are kept. Called by Celery beat (`config.platform.idempotency.tasks`). Returns rows deleted.

    A reaped key is forgotten: a later request with it runs as new (the draft allows this after expiry).
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL)
    due = IdempotencyKey.objects.filter(created_at__lt=cutoff).exclude(locked_until__gt=now)
    deleted = 0
    while True:
        ids = list(due.values_list("pk", flat=True)[:batch_size])
        if not ids:
            return deleted
        with transaction.atomic():
            count, _ = due.filter(pk__in=ids).delete()
        deleted += count
