"""Fifty concurrent requests with one Idempotency-Key against a real gunicorn server (two worker processes with
threads, so the requests race across processes): one payment; every other answer is 409 or a byte-identical replay."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
from django.db import connection

from config.platform.idempotency.models import IdempotencyKey
from config.platform.outbox.models import OutboxMessage
from payments.models import Event, Payment
from tests.conftest import MerchantClient, payment_body, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

BASE_DIR = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    parts = urlsplit(os.environ["DATABASE_URL"])
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"])),
    }
    argv = [
        str(Path(sys.executable).parent / "gunicorn"),
        "config.wsgi",
        f"--bind=127.0.0.1:{port}",
        "--worker-class=gthread",
        "--workers=2",
        "--threads=8",
        "--log-level=warning",
    ]
    log = open(tmp_path / "gunicorn.log", "wb")
    proc = subprocess.Popen(argv, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return requests.get(f"{url}/healthz", timeout=5).status_code == 200
        except requests.RequestException:
            assert proc.poll() is None, (tmp_path / "gunicorn.log").read_text()
            return False

    try:
        wait_until(up, timeout=60, what="gunicorn to serve")
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


def test_fifty_concurrent_requests_with_one_key_make_one_payment(api: MerchantClient, server: str):
    barrier = threading.Barrier(50)
    answers: list[requests.Response] = []
    lock = threading.Lock()
    headers = {
        "Authorization": f"Bearer {api.api_key}",
        "Idempotency-Key": "fifty-at-once",
        "Content-Type": "application/json",
    }

    def send() -> None:
        with requests.Session() as session:
            barrier.wait()
            response = session.post(f"{server}/v1/payments", json=payment_body(), headers=headers, timeout=60)
        with lock:
            answers.append(response)

    threads = [threading.Thread(target=send) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(answers) == 50
    assert Counter(r.status_code for r in answers).keys() <= {202, 409}
    first = [r for r in answers if r.status_code == 202 and "Idempotent-Replayed" not in r.headers]
    assert len(first) == 1
    for r in answers:
        if r.status_code == 202:
            assert r.content == first[0].content
        else:
            assert r.json()["code"] == "idempotency_key_in_use" and r.headers["Retry-After"] == "1"
    assert Payment.objects.count() == 1 and IdempotencyKey.objects.count() == 1
    assert Event.objects.count() == 1 and OutboxMessage.objects.filter(topic="payment.created").count() == 2
    later = requests.post(f"{server}/v1/payments", json=payment_body(), headers=headers, timeout=30)
    assert later.content == first[0].content and later.headers["Idempotent-Replayed"] == "true"
