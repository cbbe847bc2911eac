"""Django app configuration for reconciliation."""

from django.apps import AppConfig


class ReconciliationConfig(AppConfig):
    """The `reconciliation` app (settlement reports, matching, discrepancies)."""

    name = "reconciliation"
    default_auto_field = "django.db.models.BigAutoField"
