"""Fixtures for the sandbox acquirer tests: a real HTTP server on a free port over a temporary SQLite file."""

from __future__ import annotations

import csv
import io
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from sandbox_acquirer.app import create_app
from sandbox_acquirer.server import make_server

API_KEY = "test_sandbox_key"
#: How long tok_timeout sleeps in these tests (seconds).
SLOW_SECONDS = 1.5


@dataclass
class SandboxServer:
    """A running sandbox acquirer: base ``url``, its SQLite ``db_path``, ``api_key`` and ``slow_seconds``."""

    url: str
    db_path: Path
    api_key: str
    slow_seconds: float


class Api:
    """Thin HTTP client for the tests (real HTTP via ``requests``; amounts in minor units)."""

    def __init__(self, url: str, api_key: str) -> None:
        self.url = url
        self.api_key = api_key

    def _session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # never go through a proxy for 127.0.0.1
        return session

    def headers(self, key: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.api_key}"}
        if key is not None:
            headers["Idempotency-Key"] = key
        return headers

    def post(
        self,
        path: str,
        body: object = None,
        *,
        key: str | None = "auto",
        timeout: float = 30.0,
        data: bytes | None = None,
    ) -> requests.Response:
        """POST JSON ``body`` (or raw ``data``) with a fresh Idempotency-Key unless ``key`` is given (None: no key)."""
        if key == "auto":
            key = uuid.uuid4().hex
        with self._session() as session:
            if data is not None:
                headers = {**self.headers(key), "Content-Type": "application/json"}
                return session.post(self.url + path, data=data, headers=headers, timeout=timeout)
            return session.post(self.url + path, json=body, headers=self.headers(key), timeout=timeout)

    def get(self, path: str, *, timeout: float = 30.0, **params: str) -> requests.Response:
        with self._session() as session:
            return session.get(self.url + path, headers=self.headers(), params=params, timeout=timeout)

    def authorize(self, token: str = "tok_visa", amount: int = 10000, currency: str = "EUR", **extra: object) -> dict:
        response = self.post(
            "/v1/authorizations",
            {
                "amount": amount,
                "currency": currency,
                "token": token,
                "reference": f"order-{uuid.uuid4().hex[:8]}",
                **extra,
            },
        )
        assert response.status_code == 201, response.text
        return response.json()

    def capture(self, psp_reference: str, amount: int) -> dict:
        response = self.post(f"/v1/authorizations/{psp_reference}/captures", {"amount": amount})
        assert response.status_code == 201, response.text
        return response.json()

    def refund(self, psp_reference: str, amount: int) -> dict:
        response = self.post(f"/v1/authorizations/{psp_reference}/refunds", {"amount": amount})
        assert response.status_code == 201, response.text
        return response.json()

    def authorization(self, psp_reference: str) -> dict:
        response = self.get(f"/v1/authorizations/{psp_reference}")
        assert response.status_code == 200, response.text
        return response.json()

    def report(self, day: str) -> list[dict[str, str]]:
        response = self.get("/v1/reports/settlement", date=day)
        assert response.status_code == 200, response.text
        return list(csv.DictReader(io.StringIO(response.text)))


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[SandboxServer]:
    """Start the acquirer on a free port in a background thread; yield it; shut it down."""
    db_path = tmp_path / "sandbox_acquirer.sqlite3"
    app = create_app(db_path=str(db_path), api_key=API_KEY, slow_seconds=SLOW_SECONDS)
    server = make_server("127.0.0.1", 0, app)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield SandboxServer(f"http://127.0.0.1:{server.server_port}", db_path, API_KEY, SLOW_SECONDS)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def sandbox_url(sandbox: SandboxServer) -> str:
    """Base URL of the running acquirer, e.g. ``http://127.0.0.1:54321``."""
    return sandbox.url


@pytest.fixture
def api(sandbox: SandboxServer) -> Api:
    """An :class:`Api` client for the running acquirer."""
    return Api(sandbox.url, sandbox.api_key)
