"""Django app configuration for the outbox."""

from django.apps import AppConfig


class OutboxConfig(AppConfig):
    """The `outbox` app: one table of work rows (`payments_outboxmessage`) and the engine that drains it."""

    name = "config.platform.outbox"
    label = "outbox"
    default_auto_field = "django.db.models.BigAutoField"
