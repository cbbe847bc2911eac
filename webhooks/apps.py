"""Django app configuration for webhooks."""

from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    """The `webhooks` app. `ready()` registers its outbox subscribers."""

    name = "webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from webhooks import handlers  # noqa: F401  (registers outbox subscribers)
