"""Django app configuration for merchants and API keys."""

from django.apps import AppConfig


class MerchantsConfig(AppConfig):
    """The `merchants` app. `ready()` connects the signals that invalidate cached API keys when a key or a
    merchant changes (config.platform.merchants.keycache)."""

    name = "config.platform.merchants"
    label = "merchants"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from config.platform.merchants import keycache
        from config.platform.merchants.models import ApiKey, Merchant

        def _keys_changed(**_: object) -> None:
            keycache.bump()

        for model in (ApiKey, Merchant):
            post_save.connect(_keys_changed, sender=model, dispatch_uid=f"keycache-save-{model.__name__}", weak=False)
            post_delete.connect(
                _keys_changed, sender=model, dispatch_uid=f"keycache-delete-{model.__name__}", weak=False
            )
