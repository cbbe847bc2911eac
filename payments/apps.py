"""Django app configuration for payments."""

from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    """The `payments` app. `ready()` registers its outbox handlers (authorize, capture, void) and the
    signals that invalidate cached API keys when a key or merchant changes (payments.keycache)."""

    name = "payments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from payments import (
            handlers,  # noqa: F401  (registers outbox subscribers)
            keycache,
        )
        from payments.models import ApiKey, Merchant

        def _keys_changed(**_: object) -> None:
            keycache.bump()

        for model in (ApiKey, Merchant):
            post_save.connect(_keys_changed, sender=model, dispatch_uid=f"keycache-save-{model.__name__}", weak=False)
            post_delete.connect(
                _keys_changed, sender=model, dispatch_uid=f"keycache-delete-{model.__name__}", weak=False
            )
