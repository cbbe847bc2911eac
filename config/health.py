"""Liveness and readiness probes.

`/healthz`: the process is alive (answers from memory, touches nothing). `/readyz`: PostgreSQL and Redis answer
(200 `{"status": "ready", "checks": {...}}`, or 503 with the failing check). Neither needs authentication.
"""

from __future__ import annotations

import time

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse


def healthz(request: HttpRequest) -> JsonResponse:
    """200 `{"status": "ok"}` while the process can serve requests."""
    return JsonResponse({"status": "ok"})


def _check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "ok"


def _check_redis() -> str:
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    finally:
        client.close()
    return "ok"


def readyz(request: HttpRequest) -> JsonResponse:
    """200 when the database and Redis both answer within a second, else 503 naming what failed."""
    checks: dict[str, str] = {}
    ok = True
    for name, check in (("database", _check_database), ("redis", _check_redis)):
        started = time.monotonic()
        try:
            check()
            checks[name] = f"ok ({(time.monotonic() - started) * 1000:.1f} ms)"
        except Exception as exc:  # report any failure as not ready; the probe itself must not crash
            ok = False
            checks[name] = f"error: {type(exc).__name__}: {exc}"
    return JsonResponse({"status": "ready" if ok else "unavailable", "checks": checks}, status=200 if ok else 503)
