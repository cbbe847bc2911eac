"""The outbox's admin page: pending work, done work and dead letters, with Replay for a dead letter.

The payments app registers it because replaying is an audited staff action (payments.staff.outbox_replay_by_staff
writes the payments audit trail); the outbox itself knows nothing of staff or audits.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, path, reverse

from config.platform.actors import Actor
from config.platform.admin import ReadOnlyAdmin, ReasonForm, StaffAction, staff_action_view
from config.platform.outbox.models import OutboxMessage, OutboxStatus
from payments import staff


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdmin):
    """Outbox rows: pending work, done work and dead letters (filter status `dead`). A dead letter's page shows
    its payload and last error, and a Replay button for users with `payments.replay_outbox`."""

    list_display = (
        "id",
        "topic",
        "subscriber",
        "key",
        "status",
        "attempts",
        "short_error",
        "available_at",
        "created_at",
    )
    list_filter = ("status", "subscriber", "topic")
    search_fields = ("=key", "=id")

    @admin.display(description="Last error")
    def short_error(self, obj: OutboxMessage) -> str:
        """The first 80 characters of the last error."""
        return obj.last_error[:80]

    def get_urls(self) -> list[URLPattern]:
        """The admin URLs plus `replay/`."""
        wrap = self.admin_site.admin_view
        return [
            path("<path:object_id>/replay/", wrap(self.replay_view), name="outbox_outboxmessage_replay"),
            *super().get_urls(),
        ]

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """The read-only row page (payload, last error), with Replay for dead letters and users who may."""
        message = self.get_object(request, unquote(object_id))
        extra = dict(extra_context or {})
        if (
            message is not None
            and message.status == OutboxStatus.DEAD
            and request.user.has_perm("payments.replay_outbox")
        ):
            extra["staff_actions"] = [
                StaffAction("Replay", reverse("admin:outbox_outboxmessage_replay", args=[message.pk]))
            ]
        return super().change_view(request, object_id, form_url, extra_context=extra)

    def replay_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Replay a dead letter (`payments.replay_outbox`, typed reason; payments.staff.outbox_replay_by_staff)."""
        if not request.user.has_perm("payments.replay_outbox"):
            raise PermissionDenied
        message = self.get_object(request, unquote(object_id))
        if message is None or not self.has_view_permission(request, message):
            raise Http404("No such outbox message.")

        def perform(actor: Actor, data: dict[str, Any]) -> str:
            staff.outbox_replay_by_staff(message_id=message.pk, actor=actor, reason=data["reason"])
            return f"Outbox message #{message.pk} is pending again."

        return staff_action_view(
            self,
            request,
            message,
            permission="payments.replay_outbox",
            title=f"Replay outbox message #{message.pk}",
            form_class=ReasonForm,
            perform=perform,
            intro=f"{message.topic} → {message.subscriber}, {message.attempts} attempts. Last error: "
            f"{message.last_error[:500]}",
        )
