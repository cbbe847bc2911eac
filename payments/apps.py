"""Django app configuration for payments."""

from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    """The `payments` app. `ready()` registers its outbox subscriber (authorize, capture, void, refund)."""

    name = "payments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from payments import handlers  # noqa: F401  (registers the outbox subscriber)
