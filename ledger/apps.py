"""Django app configuration for the ledger."""

from django.apps import AppConfig


class LedgerConfig(AppConfig):
    """The `ledger` app: accounts, ledger transactions, entries. `ready()` clears the account cache on flush."""

    name = "ledger"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from ledger.accounts import forget_cached_accounts

        # Django's flush (the test suite's reset between tests) sends post_migrate: cached account ids are gone.
        post_migrate.connect(forget_cached_accounts, dispatch_uid="ledger-forget-cached-accounts", weak=False)
