"""The audit trail of what people do: who, what, why, when (payments.models.AuditRecord, append-only).

Every staff action (void, release a hold, void a held payment, replay a dead letter, resolve a reconciliation
discrepancy) writes one record in the same database transaction as the change it records, so there is never a
change without its record or a record without its change (Zulip's rule). PostgreSQL refuses UPDATE and DELETE on
the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from payments.errors import ReasonRequired
from payments.models import AuditRecord

#: Longest reason kept (characters); longer input is refused rather than cut.
MAX_REASON_LENGTH = 1000


@dataclass(frozen=True, kw_only=True)
class Actor:
    """Who did something: a staff user's `username` and `user_id` (None for the system itself)."""

    username: str
    user_id: int | None = None

    @classmethod
    def from_user(cls, user: Any) -> Actor:
        """The actor for a Django user (`request.user` in the admin)."""
        return cls(username=user.get_username(), user_id=user.pk)


#: Changes made by Clearhouse itself (e.g. a re-run of reconciliation closing what it no longer finds).
SYSTEM = Actor(username="system")


def clean_reason(reason: str) -> str:
    """`reason` stripped. Raises ReasonRequired when it is empty or longer than MAX_REASON_LENGTH characters."""
    cleaned = (reason or "").strip()
    if not cleaned:
        raise ReasonRequired("Type a reason: it is kept in the audit trail.")
    if len(cleaned) > MAX_REASON_LENGTH:
        raise ReasonRequired(f"The reason may be at most {MAX_REASON_LENGTH} characters.")
    return cleaned


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
