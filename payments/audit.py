"""The audit trail of what people do: who, what, why, when (payments.models.AuditRecord, append-only).

Every staff action (void, release a hold, void a held payment, replay a dead letter, resolve a reconciliation
discrepancy) writes one record in the same database transaction as the change it records, so there is never a
change without its record or a record without its change (Zulip's rule). PostgreSQL refuses UPDATE and DELETE on
the table.
"""

from __future__ import annotations

from typing import Any

from config.platform.actors import SYSTEM, Actor, clean_reason
from payments.models import AuditRecord

__all__ = ["SYSTEM", "Actor", "audit_record_write", "clean_reason"]


def audit_record_write(
    *,
    actor: Actor,
    action: str,
    object_type: str,
    object_id: str,
    reason: str,
    payment_id: str | None = None,
    data: dict[str, Any] | None = None,
) -> AuditRecord:
    """Append one audit record in the caller's transaction (call it inside the transaction of the change).

    `action` is a stable dotted name (`payment.void`, `payment.hold_release`, `outbox.replay`,
    `reconciliation.discrepancy_resolve`); `object_type`/`object_id` name what it was done to; `payment_id`
    links it to a payment when there is one. Raises ReasonRequired for an empty or over-long `reason`.
    """
    return AuditRecord.objects.create(
        actor=actor.username,
        actor_id=actor.user_id,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        payment_id=payment_id,
        reason=clean_reason(reason),
        data=data or {},
    )
