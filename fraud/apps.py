"""Django app configuration for fraud."""

from django.apps import AppConfig


class FraudConfig(AppConfig):
    """The `fraud` app (scoring rules, results, holds through payments). `ready()` registers its subscriber."""

    name = "fraud"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from fraud import handlers  # noqa: F401  (registers the `fraud.score` outbox subscriber)
