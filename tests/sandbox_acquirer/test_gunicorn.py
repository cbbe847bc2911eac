"""Several gunicorn gthread worker processes sharing one SQLite file keep the money invariants."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from .conftest import Api

pytest.importorskip("gunicorn")

REPO_ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def gunicorn_api(tmp_path: Path) -> Iterator[Api]:
    port = _free_port()
    env = {
        **os.environ,
        "SANDBOX_ACQUIRER_DB": str(tmp_path / "shared.sqlite3"),
        "SANDBOX_ACQUIRER_API_KEY": "gunicorn_key",
        "SANDBOX_ACQUIRER_SLOW_SECONDS": "1.5",
        "PYTHONPATH": str(REPO_ROOT),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", "3", "--worker-class", "gthread", "--threads", "4",
         "--bind", f"127.0.0.1:{port}", "--chdir", str(REPO_ROOT), "sandbox_acquirer.app:application"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else "gunicorn exited"
            try:
                with requests.Session() as session:
                    session.trust_env = False
                    if session.get(url + "/healthz", timeout=1).status_code == 200:
                        break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.1)
        yield Api(url, "gunicorn_key")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()


def _together(count: int, action) -> list[requests.Response]:
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def worker(index: int) -> None:
        barrier.wait()
        results[index] = action(index)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.slow
def test_gunicorn_workers_share_one_database_safely(gunicorn_api: Api) -> None:
    api = gunicorn_api
    auth = api.authorize(amount=10000)
    api.capture(auth["psp_reference"], 10000)
    path = f"/v1/authorizations/{auth['psp_reference']}/refunds"
    responses = _together(24, lambda i: api.post(path, {"amount": 1000}))
    assert Counter(r.status_code for r in responses) == {201: 10, 422: 14}
    assert api.authorization(auth["psp_reference"])["refunded_amount"] == 10000

    key = uuid.uuid4().hex
    body = {"amount": 900, "currency": "EUR", "token": "tok_visa", "reference": "dup"}
    duplicates = _together(12, lambda i: api.post("/v1/authorizations", body, key=key))
    originals = [r for r in duplicates if r.status_code == 201 and "Idempotent-Replayed" not in r.headers]
    assert len(originals) == 1
    assert all(r.status_code in (201, 409) for r in duplicates)
    assert all(r.content == originals[0].content for r in duplicates if r.status_code == 201)

    slow_key = uuid.uuid4().hex
    slow_body = {**body, "token": "tok_timeout"}
    slow = _together(6, lambda i: api.post("/v1/authorizations", slow_body, key=slow_key))
    assert sorted(r.status_code for r in slow).count(409) >= 1
    assert len([r for r in slow if r.status_code == 201 and "Idempotent-Replayed" not in r.headers]) == 1
    replay = api.post("/v1/authorizations", slow_body, key=slow_key, timeout=1.0)
    assert replay.headers["Idempotent-Replayed"] == "true"
