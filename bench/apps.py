"""Django app configuration of the `bench` package (installed only by bench.settings)."""

from django.apps import AppConfig


class BenchConfig(AppConfig):
    """The `bench` app: `ready()` registers the no-op outbox subscriber used by the relay scenario."""

    name = "bench"
    label = "bench"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Register the `bench.noop` outbox subscriber (imported for its side effect)."""
        from bench import noop  # noqa: F401  (registers the `bench.noop` outbox subscriber)
