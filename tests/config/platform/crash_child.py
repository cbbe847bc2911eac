"""A real API process for the crash tests: sends one request through the whole Django stack and, when the request
passes the recovery point named by CRASH_AT, prints `REACHED <point>` and blocks until the test kills it.

Environment: DJANGO_SETTINGS_MODULE, DATABASE_URL (the test database), REDIS_URL, CRASH_AT, API_KEY,
IDEMPOTENCY_KEY, REQUEST_PATH, REQUEST_BODY (JSON), optional PREFER (the Prefer header, e.g. `wait=1`).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

import django

django.setup()

from django.test import Client  # noqa: E402

from config.platform.idempotency import execution as idempotency  # noqa: E402


def stop_at(point: str) -> None:
    if point == os.environ["CRASH_AT"]:
        print(f"REACHED {point}", flush=True)
        while True:
            signal.pause()  # until SIGKILL


idempotency.checkpoint = stop_at
response = Client().post(
    os.environ["REQUEST_PATH"],
    data=os.environ["REQUEST_BODY"],
    content_type="application/json",
    HTTP_AUTHORIZATION=f"Bearer {os.environ['API_KEY']}",
    HTTP_IDEMPOTENCY_KEY=os.environ["IDEMPOTENCY_KEY"],
    **({"HTTP_PREFER": os.environ["PREFER"]} if os.environ.get("PREFER") else {}),
)
print(f"FINISHED {response.status_code}", flush=True)
