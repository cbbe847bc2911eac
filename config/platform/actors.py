"""Who did something, and why: the actor and typed reason every staff action carries (Zulip's rule: the audit
record is written in the transaction of the change; the record itself is the payments app's AuditRecord)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from config.platform.errors import ReasonRequired

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
