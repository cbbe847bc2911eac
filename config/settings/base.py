"""Base settings, read from the environment (12-factor, via django-environ).

Every setting that differs between machines comes from an environment variable; see docs/operations.md for the
full list. Durations are in seconds unless the name says otherwise.
"""

from __future__ import annotations

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()

# --- Core -------------------------------------------------------------------------------------------------
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="dev-only-insecure-secret-key-change-me")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_prometheus",
    "django_structlog",
    "pgtrigger",
    "config.platform.merchants",
    "config.platform.idempotency",
    "config.platform.outbox",
    "ledger",
    "payments",
    "fraud",
    "webhooks",
    "reconciliation",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "config.platform.http.middleware.BodySizeLimitMiddleware",
    "config.platform.http.middleware.CardNumberGuardMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_structlog.middlewares.RequestMiddleware",
    "config.platform.http.middleware.RequestIdHeaderMiddleware",
    "config.platform.http.ratelimit.RateLimitHeadersMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------------------------
# DATABASE_URL, e.g. postgres://postgres@127.0.0.1:5432/clearhouse. `make run`/`make test`/manage.py fill it in
# with the embedded server's socket URL when it is unset (config/embedded.py).
DATABASES = {"default": env.db_url("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/clearhouse")}
DATABASES["default"]["ENGINE"] = "django.db.backends.postgresql"
# Persistent connections (seconds); health-checked before reuse.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"].setdefault("OPTIONS", {})
DATABASES["default"]["TEST"] = {"NAME": env.str("DATABASE_TEST_NAME", default="test_clearhouse")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, Celery broker --------------------------------------------------------------------------
# REDIS_URL, e.g. redis://127.0.0.1:6379/0 or unix:///path/redis.sock?db=0 (the embedded server).
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "clearhouse",
        "OPTIONS": {
            # Redis is only ever a fast path: a down Redis must never fail a request (see docs/architecture.md).
            "IGNORE_EXCEPTIONS": True,
            "SOCKET_CONNECT_TIMEOUT": 0.5,
            "SOCKET_TIMEOUT": 0.5,
        },
    }
}
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True


def _celery_broker_url(redis_url: str) -> str:
    """Kombu spells a Unix-socket Redis URL `redis+socket://PATH?virtual_host=DB`."""
    if redis_url.startswith("unix://"):
        path, _, query = redis_url[len("unix://") :].partition("?")
        db = dict(p.split("=", 1) for p in query.split("&") if "=" in p).get("db", "0")
        return f"redis+socket://{path}?virtual_host={db}"
    return redis_url


CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=_celery_broker_url(REDIS_URL))
# After a commit that wrote outbox rows, send a Celery task to drain them at once (else the sweep finds them).
OUTBOX_NUDGE = env.bool("OUTBOX_NUDGE", default=True)
# Seconds: a process sends at most one such nudge per interval, and always one after the last commit
# (config.platform.outbox.engine._NudgeCoalescer); a drain handles every row due, so more nudges wake no more work.
OUTBOX_NUDGE_INTERVAL = env.float("OUTBOX_NUDGE_INTERVAL", default=0.05)
CELERY_TASK_ACKS_LATE = True  # a task is acknowledged after it ran, so a dead worker's task is redelivered
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redis visibility timeout (seconds): an unacknowledged task is redelivered after this long. Longer than any
# task runs (an outbox drain stops itself after OUTBOX_DRAIN_BUDGET seconds).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
    "socket_connect_timeout": 1.0,
    "socket_timeout": 5.0,
}
CELERY_TASK_PUBLISH_RETRY = False
CELERY_WORKER_HIJACK_ROOT_LOGGER = False  # keep our JSON logging in workers
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    "outbox-sweep": {
        "task": "payments.tasks.outbox_sweep",
        "schedule": env.float("OUTBOX_SWEEP_INTERVAL", default=2.0),
        "options": {"expires": 10},
    },
    "authorizations-expire": {
        "task": "payments.tasks.authorizations_expire",
        "schedule": env.float("AUTHORIZATION_EXPIRY_SWEEP_INTERVAL", default=60.0),
        "options": {"expires": 60},
    },
    "outbox-reap": {
        "task": "payments.tasks.outbox_reap",
        "schedule": env.float("OUTBOX_REAP_INTERVAL", default=3600.0),
        "options": {"expires": 600},
    },
    "idempotency-keys-reap": {
        "task": "payments.tasks.idempotency_keys_reap",
        "schedule": env.float("IDEMPOTENCY_REAP_INTERVAL", default=3600.0),
        "options": {"expires": 600},
    },
}

# --- Outbox -----------------------------------------------------------------------------------------------
OUTBOX_BATCH_SIZE = env.int("OUTBOX_BATCH_SIZE", default=50)
# A claimed row is leased for this many seconds; if its worker dies, another takes it after the lease.
OUTBOX_LEASE_SECONDS = env.float("OUTBOX_LEASE_SECONDS", default=60.0)
# One drain task stops after this many seconds so it never starves the worker (the sweep starts another).
OUTBOX_DRAIN_BUDGET = env.float("OUTBOX_DRAIN_BUDGET", default=10.0)
OUTBOX_MAX_ATTEMPTS = env.int("OUTBOX_MAX_ATTEMPTS", default=8)
# Seconds a handled (`done`) row is kept before beat deletes it (pending and dead rows are never deleted).
OUTBOX_DONE_RETENTION = env.float("OUTBOX_DONE_RETENTION", default=7 * 24 * 3600.0)
OUTBOX_BACKOFF_BASE = env.float("OUTBOX_BACKOFF_BASE", default=1.0)  # seconds, doubled per attempt
OUTBOX_BACKOFF_CAP = env.float("OUTBOX_BACKOFF_CAP", default=300.0)  # seconds

# --- Processors -------------------------------------------------------------------------------------------
PROCESSORS = {
    "sandbox": {
        "ADAPTER": "payments.processors.sandbox.SandboxProcessor",
        "BASE_URL": env.str("SANDBOX_ACQUIRER_URL", default="http://127.0.0.1:8001"),
        "API_KEY": env.str("SANDBOX_ACQUIRER_API_KEY", default="sandbox_acquirer_key"),
        "MERCHANT_ACCOUNT": env.str("SANDBOX_ACQUIRER_MERCHANT_ACCOUNT", default="ClearhouseSandbox"),
        "CONNECT_TIMEOUT": env.float("PROCESSOR_CONNECT_TIMEOUT", default=3.05),  # seconds
        "READ_TIMEOUT": env.float("PROCESSOR_READ_TIMEOUT", default=10.0),  # seconds
    },
}
DEFAULT_PROCESSOR = env.str("DEFAULT_PROCESSOR", default="sandbox")

# --- Webhooks ---------------------------------------------------------------------------------------------
# Outbound webhooks may not reach loopback/private/link-local addresses unless this is True (development only).
WEBHOOKS_ALLOW_PRIVATE_NETWORKS = env.bool("WEBHOOKS_ALLOW_PRIVATE_NETWORKS", default=False)
WEBHOOKS_CONNECT_TIMEOUT = env.float("WEBHOOKS_CONNECT_TIMEOUT", default=3.05)  # seconds
WEBHOOKS_READ_TIMEOUT = env.float("WEBHOOKS_READ_TIMEOUT", default=10.0)  # seconds
WEBHOOKS_MAX_ATTEMPTS = env.int("WEBHOOKS_MAX_ATTEMPTS", default=10)
WEBHOOKS_BACKOFF_BASE = env.float("WEBHOOKS_BACKOFF_BASE", default=5.0)  # seconds, doubled per attempt
WEBHOOKS_BACKOFF_CAP = env.float("WEBHOOKS_BACKOFF_CAP", default=3600.0)  # seconds

# --- API --------------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["config.platform.merchants.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "config.platform.http.problems.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": ["config.platform.http.ratelimit.MerchantRateThrottle"],
}
# Replayable idempotency keys are kept this long (seconds) at least; Celery beat reaps older ones.
IDEMPOTENCY_KEY_TTL = env.int("IDEMPOTENCY_KEY_TTL", default=24 * 3600)
# Seconds a process may reuse an API key it looked up. Revocation still applies on the next request (a Redis
# generation counter, config.platform.merchants.keycache); the TTL only bounds changes made while Redis was
# unreachable. 0: off.
API_KEY_CACHE_TTL = env.float("API_KEY_CACHE_TTL", default=60.0)
# A request owns its idempotency key for this long (seconds); a retry after a crash takes over once it passed.
# Longer than any request runs (Prefer: wait is at most API_PREFER_WAIT_MAX).
IDEMPOTENCY_LOCK_TTL = env.float("IDEMPOTENCY_LOCK_TTL", default=30.0)
# Uncaptured authorizations expire after this many seconds (7 days, like a card hold).
PAYMENT_AUTHORIZATION_TTL = env.int("PAYMENT_AUTHORIZATION_TTL", default=7 * 24 * 3600)
# Request bodies over this many bytes are answered 413 (Django refuses bigger ones even outside /v1).
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=64 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = max(API_MAX_BODY_BYTES, 2_621_440)
# `Prefer: wait=N` waits at most this many seconds (RFC 7240).
API_PREFER_WAIT_MAX = env.float("API_PREFER_WAIT_MAX", default=10.0)
# Per-merchant token buckets (docs/api.md, Limits): tokens per second and burst, for reads and for writes.
RATE_LIMIT_ENABLED = env.bool("RATE_LIMIT_ENABLED", default=True)
RATE_LIMIT_READ_RATE = env.float("RATE_LIMIT_READ_RATE", default=50.0)
RATE_LIMIT_READ_BURST = env.int("RATE_LIMIT_READ_BURST", default=100)
RATE_LIMIT_WRITE_RATE = env.float("RATE_LIMIT_WRITE_RATE", default=25.0)
RATE_LIMIT_WRITE_BURST = env.int("RATE_LIMIT_WRITE_BURST", default=50)
# Redis fast paths (idempotency replays and locks, rate limits, waits) give up after this many seconds.
REDIS_SOCKET_TIMEOUT = env.float("REDIS_SOCKET_TIMEOUT", default=0.5)

SPECTACULAR_SETTINGS = {
    "TITLE": "Clearhouse merchant API",
    "DESCRIPTION": (
        "Accept, capture, void and refund card payments; follow them with events and signed webhooks. "
        "Amounts are integers in minor units of an ISO 4217 currency. Every POST needs an `Idempotency-Key`. "
        "Errors are RFC 9457 problem documents with a stable `code`. See docs/api.md for the lifecycle, "
        "idempotency, waiting (`Prefer: wait`) and rate limits."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/v1",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "PaymentStatusEnum": "payments.models.PaymentStatus",
        "RefundStatusEnum": "payments.models.RefundStatus",
        "RefundReasonEnum": "payments.models.RefundReason",
        "CaptureMethodEnum": "payments.models.CaptureMethod",
        "CurrencyEnum": "config.platform.http.fields.CURRENCY_CODES",
        "PaymentObjectEnum": ["payment"],
        "RefundObjectEnum": ["refund"],
        "EventObjectEnum": ["event"],
        "ListObjectEnum": ["list"],
        "WebhookEndpointObjectEnum": ["webhook_endpoint"],
        "WebhookEndpointStatusEnum": ["enabled", "disabled"],
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.platform.http.openapi.finish_schema",
    ],
}

# --- Static files, i18n -----------------------------------------------------------------------------------
STATIC_URL = "static/"
# WhiteNoise serves the admin's static files from gunicorn, straight from the installed apps (no collectstatic
# needed); set STATIC_ROOT and run collectstatic to serve a compressed, cached copy instead.
STATIC_ROOT = env.str("STATIC_ROOT", default=None)
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=True)
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Observability ----------------------------------------------------------------------------------------
PROMETHEUS_EXPORT_MIGRATIONS = False
SENTRY_DSN = env.str("SENTRY_DSN", default="")
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_FORMAT = env.str("LOG_FORMAT", default="json")  # json | console
DJANGO_STRUCTLOG_CELERY_ENABLED = True
# Keep an upstream X-Request-ID (from a load balancer or the merchant) as the request id; else a UUID is made.
DJANGO_STRUCTLOG_TRUST_UPSTREAM_REQUEST_ID = env.bool("TRUST_UPSTREAM_REQUEST_ID", default=True)

from config.observability import configure_logging, configure_sentry  # noqa: E402

LOGGING = configure_logging(level=LOG_LEVEL, fmt=LOG_FORMAT)
configure_sentry(dsn=SENTRY_DSN, environment=env.str("SENTRY_ENVIRONMENT", default="development"))

# --- Ledger -----------------------------------------------------------------------------------------------
# Balance rows per platform account (a merchant's accounts always have one, so balance checks can lock it).
# Applies to accounts opened from now on; docs/ledger.md explains the choice.
LEDGER_BALANCE_SHARDS = env.int("LEDGER_BALANCE_SHARDS", default=16)
# The sealer (hash chain) runs every LEDGER_SEAL_INTERVAL seconds and looks back LEDGER_SEAL_LOOKBACK seconds
# for ledger transactions that committed late; ledger_verify fails for anything older than LEDGER_SEAL_GRACE
# seconds that is still unsealed.
LEDGER_SEAL_INTERVAL = env.float("LEDGER_SEAL_INTERVAL", default=60.0)
LEDGER_SEAL_LOOKBACK = env.float("LEDGER_SEAL_LOOKBACK", default=3600.0)
LEDGER_SEAL_GRACE = env.float("LEDGER_SEAL_GRACE", default=3600.0)
# Nightly ledger_verify (UTC hour and minute).
LEDGER_VERIFY_HOUR = env.int("LEDGER_VERIFY_HOUR", default=3)
LEDGER_VERIFY_MINUTE = env.int("LEDGER_VERIFY_MINUTE", default=17)

from celery.schedules import crontab  # noqa: E402

CELERY_BEAT_SCHEDULE["ledger-seal"] = {
    "task": "ledger.tasks.seal",
    "schedule": LEDGER_SEAL_INTERVAL,
    "options": {"expires": LEDGER_SEAL_INTERVAL},
}
CELERY_BEAT_SCHEDULE["ledger-verify"] = {
    "task": "ledger.tasks.verify",
    "schedule": crontab(hour=LEDGER_VERIFY_HOUR, minute=LEDGER_VERIFY_MINUTE),
    "options": {"expires": 6 * 3600},
}

# --- Reconciliation ---------------------------------------------------------------------------------------
# A capture recorded this many seconds before midnight UTC may be in the next day's settlement report; only after
# that is it a `missing_from_report` discrepancy (reconciliation.matching.missing_window).
RECONCILIATION_MISSING_GRACE_SECONDS = env.int("RECONCILIATION_MISSING_GRACE_SECONDS", default=900)
# Nightly run of yesterday's report (UTC), at RECONCILIATION_HOUR:RECONCILIATION_MINUTE UTC.
CELERY_BEAT_SCHEDULE["reconcile-nightly"] = {
    "task": "reconciliation.tasks.reconcile_nightly",
    "schedule": crontab(
        hour=env.int("RECONCILIATION_HOUR", default=3), minute=env.int("RECONCILIATION_MINUTE", default=0)
    ),
    "options": {"expires": 3600},
}
