"""Django app configuration for fraud."""

from django.apps import AppConfig


class FraudConfig(AppConfig):
    """The `fraud` app (scoring rules, holds, review queue)."""

    name = "fraud"
    default_auto_field = "django.db.models.BigAutoField"
