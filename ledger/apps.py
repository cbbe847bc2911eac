"""Django app configuration for the ledger."""

from django.apps import AppConfig


class LedgerConfig(AppConfig):
    """The `ledger` app: accounts, ledger transactions, entries."""

    name = "ledger"
    default_auto_field = "django.db.models.BigAutoField"
