"""Django app configuration for idempotency keys."""

from django.apps import AppConfig


class IdempotencyConfig(AppConfig):
    """The `idempotency` app: stored keys and answers (`payments_idempotencykey`)."""

    name = "config.platform.idempotency"
    label = "idempotency"
    default_auto_field = "django.db.models.BigAutoField"
