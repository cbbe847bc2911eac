"""Test settings (`make test`): real PostgreSQL and Redis, short retry delays, webhooks to localhost allowed."""

from config.settings.base import *
from config.settings.base import _celery_broker_url, configure_logging, env

DEBUG = False
WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast user creation in tests only
# No waiting between retries in tests, unless a test (or a worker a test starts) asks for it.
OUTBOX_BACKOFF_BASE = env.float("OUTBOX_BACKOFF_BASE", default=0.0)
OUTBOX_BACKOFF_CAP = env.float("OUTBOX_BACKOFF_CAP", default=0.0)
WEBHOOKS_BACKOFF_BASE = 0.0
WEBHOOKS_BACKOFF_CAP = 0.0
OUTBOX_LEASE_SECONDS = env.float("OUTBOX_LEASE_SECONDS", default=30.0)
DATABASES["default"]["CONN_MAX_AGE"] = 0
LOGGING = configure_logging(level=LOG_LEVEL, fmt=env.str("LOG_FORMAT", default="console"))
# Tests drain the outbox themselves (tests/conftest.py: outbox_runner); the worker test turns nudges back on.
OUTBOX_NUDGE = False


def _redis_db(url: str, db: int) -> str:
    """`url` pointed at Redis database `db`, so tests never touch a developer's queues and cache (db 0)."""
    if url.startswith("unix://"):
        path = url.split("?", 1)[0]
        return f"{path}?db={db}"
    scheme, rest = url.split("://", 1)
    host = rest.split("/", 1)[0]
    return f"{scheme}://{host}/{db}"


REDIS_URL = _redis_db(REDIS_URL, env.int("TEST_REDIS_DB", default=15))
CACHES["default"]["LOCATION"] = REDIS_URL
CELERY_BROKER_URL = _celery_broker_url(REDIS_URL)

# Generous rate limits so that tests which are not about limits never meet them; the limit tests lower them.
RATE_LIMIT_READ_RATE = 10_000.0
RATE_LIMIT_READ_BURST = 100_000
RATE_LIMIT_WRITE_RATE = 10_000.0
RATE_LIMIT_WRITE_BURST = 100_000
