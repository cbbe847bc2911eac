"""Shared fixtures: merchants and API clients, a real sandbox acquirer over HTTP, and the outbox runner.

Tests run against the real PostgreSQL and Redis of `make test` (DATABASE_URL/REDIS_URL or the embedded ones).
The processor is the real sandbox acquirer, served over HTTP from a thread; nothing of our own is mocked.

After every test that left ledger traffic, the ledger is sealed and every `ledger_verify` check is run on it
before the database is flushed (`pytest_runtest_teardown` below): a broken invariant fails that test. Tests that
break the ledger on purpose carry `@pytest.mark.ledger_tampered`.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from config.platform.merchants.models import Merchant
from config.platform.merchants.services import merchant_create
from config.platform.outbox import engine as outbox
from config.platform.outbox.models import OutboxMessage, OutboxStatus
from payments.processors import get_processor
from sandbox_acquirer.app import create_app
from sandbox_acquirer.server import make_server

pytest_plugins = ["tests.operators"]

ACQUIRER_KEY = "test_acquirer_key"
#: How long the test acquirer makes `tok_timeout` wait (seconds); the adapter's read timeout is shorter.
ACQUIRER_SLOW_SECONDS = 3.0
ADAPTER_READ_TIMEOUT = 1.0


@dataclass
class Acquirer:
    """A running sandbox acquirer: its base URL and its SQLite file (the processor's own books)."""

    url: str
    db_path: Path
    server: Any

    def authorizations_for(self, reference: str) -> list[dict[str, Any]]:
        """Rows of the acquirer's authorizations table with this merchant reference."""
        with sqlite3.connect(self.db_path) as db:
            db.row_factory = sqlite3.Row
            return [dict(r) for r in db.execute("SELECT * FROM authorizations WHERE reference = ?", (reference,))]


def start_acquirer(db_path: Path, *, slow_seconds: float = ACQUIRER_SLOW_SECONDS) -> Acquirer:
    """Serve a sandbox acquirer on a free loopback port from a daemon thread."""
    app = create_app(db_path=str(db_path), api_key=ACQUIRER_KEY, slow_seconds=slow_seconds)
    server = make_server("127.0.0.1", 0, app)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return Acquirer(url=f"http://127.0.0.1:{server.server_port}", db_path=db_path, server=server)


@pytest.fixture(scope="session")
def acquirer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Acquirer]:
    """The session's sandbox acquirer (real HTTP on 127.0.0.1)."""
    running = start_acquirer(tmp_path_factory.mktemp("acquirer") / "acquirer.sqlite3")
    yield running
    running.server.shutdown()
    running.server.server_close()


def processor_settings(url: str, *, read_timeout: float = ADAPTER_READ_TIMEOUT) -> dict[str, Any]:
    """A PROCESSORS setting pointing the sandbox adapter at `url`."""
    return {
        "sandbox": {
            "ADAPTER": "payments.processors.sandbox.SandboxProcessor",
            "BASE_URL": url,
            "API_KEY": ACQUIRER_KEY,
            "MERCHANT_ACCOUNT": "TestAccount",
            "CONNECT_TIMEOUT": 1.0,
            "READ_TIMEOUT": read_timeout,
        }
    }


@pytest.fixture(autouse=True)
def _use_test_acquirer(settings: Any, acquirer: Acquirer) -> Iterator[None]:
    settings.PROCESSORS = processor_settings(acquirer.url)
    get_processor.cache_clear()
    yield
    get_processor.cache_clear()


@dataclass
class MerchantClient:
    """A merchant, its plaintext test key, and an authenticated API client with JSON helpers."""

    merchant: Merchant
    api_key: str
    client: APIClient

    def post(self, path: str, body: Any = None, *, key: str | None = "auto", **headers: str) -> Any:
        """POST JSON with a fresh Idempotency-Key (or `key`; None sends none)."""
        if key == "auto":
            key = new_idempotency_key()
        if key is not None:
            headers["HTTP_IDEMPOTENCY_KEY"] = key
        data = json.dumps(body if body is not None else {})
        return self.client.post(path, data=data, content_type="application/json", **headers)

    def get(self, path: str, **params: Any) -> Any:
        """GET with query parameters."""
        return self.client.get(path, params)


def new_idempotency_key() -> str:
    """A fresh, unique Idempotency-Key without digits: a random UUID's digits would now and then form a
    Luhn-valid 13–19 digit run, which the card-number guard rightly refuses (pan_not_allowed)."""
    return "key-" + uuid.uuid4().hex.translate(str.maketrans("0123456789", "ghijklmnop"))


def make_merchant_client(name: str = "Test Merchant") -> MerchantClient:
    """Create a merchant through the real service and an APIClient carrying its key."""
    merchant, raw = merchant_create(name=name)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return MerchantClient(merchant=merchant, api_key=raw, client=client)


@pytest.fixture
def api(db: None) -> MerchantClient:
    """A merchant with an authenticated API client."""
    return make_merchant_client()


@pytest.fixture
def other_api(db: None) -> MerchantClient:
    """A second, unrelated merchant."""
    return make_merchant_client("Other Merchant")


def drain_outbox(*, max_rounds: int = 100) -> int:
    """Run the outbox synchronously until no row is due (Sentry's outbox_runner). Returns rows handled."""
    handled = 0
    for _ in range(max_rounds):
        n = outbox.drain(budget_seconds=60)
        handled += n
        if n == 0 and not outbox.has_due_work():
            break
    return handled


def drain_once() -> int:
    """Claim one batch of due rows and handle each once (one attempt per row). Returns rows handled."""
    rows = outbox.claim(batch_size=100)
    for row in rows:
        outbox.process(row)
    return len(rows)


def make_due(**filters: Any) -> int:
    """Make matching pending rows due now, as if their backoff had elapsed (moves the clock, not the code)."""
    from django.utils import timezone

    return OutboxMessage.objects.filter(status=OutboxStatus.PENDING, **filters).update(available_at=timezone.now())


def pending_outbox() -> list[OutboxMessage]:
    """Outbox rows still pending."""
    return list(OutboxMessage.objects.filter(status=OutboxStatus.PENDING).order_by("id"))


def payment_body(**overrides: Any) -> dict[str, Any]:
    """A realistic `POST /v1/payments` body."""
    body: dict[str, Any] = {
        "amount": 2599,
        "currency": "EUR",
        "payment_method": "tok_visa",
        "description": "Order #1001",
        "metadata": {"order_id": "1001"},
        "customer": {"email": "ada@example.com", "ip": "203.0.113.7"},
    }
    body.update(overrides)
    return body


def subprocess_database_url() -> str:
    """DATABASE_URL naming the test database pytest-django created, for processes a test starts.

    Built from the DATABASE_URL the suite runs on (TCP or the embedded server's `?host=<socket dir>`), with only
    the database name replaced, so a child process reaches the very same server.
    """
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))


def close_connection_after(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a thread target so its own database connection is closed when it ends."""

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        finally:
            connection.close()

    return wrapped


# --- ledger_verify after every test's ledger traffic -----------------------------------------------------------

_LEDGER_CHECKED = pytest.StashKey[dict[str, int]]()


def _uses_database(item: pytest.Item) -> bool:
    fixtures = getattr(item, "fixturenames", ())
    return item.get_closest_marker("django_db") is not None or "db" in fixtures or "transactional_db" in fixtures


def _verify_ledger_traffic() -> tuple[int, list[str]]:
    """Seal and check the ledger as the test left it; returns (ledger transactions checked, failures)."""
    from ledger import sealing as ledger_sealing
    from ledger.models import LedgerTransaction
    from ledger.verify import run_checks

    count = LedgerTransaction.objects.count()
    if not count:
        return 0, []
    ledger_sealing.chain_seal()
    return count, [f"{r.name}: {f}" for r in run_checks() for f in r.failures]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    """Before the test's fixtures are torn down (and the database flushed), run `ledger_verify`'s checks over
    the ledger the test built; after teardown, fail the test if any invariant is broken."""
    failures: list[str] = []
    stats = item.config.stash.setdefault(_LEDGER_CHECKED, {"tests": 0, "transactions": 0, "broken": 0})
    if _uses_database(item) and item.get_closest_marker("ledger_tampered") is None:
        from django.db import connection as db_connection

        if not db_connection.needs_rollback:
            checked, failures = _verify_ledger_traffic()
            if checked:
                stats["tests"] += 1
                stats["transactions"] += checked
                stats["broken"] += bool(failures)
    result = yield
    if failures:
        raise AssertionError("ledger_verify fails after this test's traffic:\n" + "\n".join(failures[:20]))
    return result


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """One line: how many tests' ledgers `ledger_verify` checked after their traffic."""
    stats = config.stash.get(_LEDGER_CHECKED, None)
    if stats and stats["tests"]:
        outcome = "all invariants held" if not stats["broken"] else f"BROKEN after {stats['broken']} test(s)"
        terminalreporter.write_line(
            f"ledger_verify after each test's traffic: {stats['tests']} tests, "
            f"{stats['transactions']} ledger transactions checked, {outcome}"
        )


@pytest.fixture(autouse=True)
def _fresh_velocity_windows() -> Iterator[None]:
    """Fraud velocity windows live in Redis, outside the test's database transaction: start each test empty."""
    from django_redis import get_redis_connection

    from fraud.velocity import KEY_PREFIX

    redis = get_redis_connection("default")
    stale = list(redis.scan_iter(f"{KEY_PREFIX}*"))
    if stale:
        redis.delete(*stale)
    yield


def client_for(raw_key: str, **kwargs: Any) -> APIClient:
    """An APIClient authenticated with `raw_key` (`raise_request_exception=False` to see 500 responses)."""
    client = APIClient(**kwargs)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


def post_json(client: APIClient, path: str, body: Any = None, *, key: str | None = "auto", **headers: str) -> Any:
    """POST `body` as JSON with `client` and an Idempotency-Key (a fresh UUID unless `key`; None sends none)."""
    if key == "auto":
        key = str(uuid.uuid4())
    if key is not None:
        headers["HTTP_IDEMPOTENCY_KEY"] = key
    return client.post(
        path, data=json.dumps(body if body is not None else {}), content_type="application/json", **headers
    )


def live_client(merchant: Merchant) -> tuple[APIClient, str]:
    """A live-mode key for `merchant` (created through the service) and a client carrying it."""
    from config.platform.merchants.services import api_key_create

    _, raw = api_key_create(merchant=merchant, mode="live")
    return client_for(raw), raw


DEAD_REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1: connections are refused at once


@pytest.fixture
def redis_down(settings: Any) -> None:
    """Point every Redis fast path (idempotency, rate limits, waits) at a Redis that refuses connections."""
    settings.REDIS_URL = DEAD_REDIS_URL


def flush_redis() -> None:
    """Empty the test Redis database (idempotency replays and locks, rate-limit buckets)."""
    import redis
    from django.conf import settings

    redis.Redis.from_url(settings.REDIS_URL).flushdb()


def wait_until(condition: Callable[[], bool], *, timeout: float = 30.0, what: str = "a condition") -> None:
    """Poll `condition` every 20 ms until it is true; fail after `timeout` seconds (a deadline, not a speed claim)."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def captured_payment(api: MerchantClient, amount: int = 10000, currency: str = "EUR") -> str:
    """A payment taken through authorize and capture by the worker; returns its id."""
    payment_id = api.post("/v1/payments", payment_body(amount=amount, currency=currency)).json()["id"]
    drain_outbox()
    return payment_id


def authorized_payment(api: MerchantClient, amount: int = 5000) -> str:
    """A manual-capture payment authorized by the worker; returns its id."""
    payment_id = api.post("/v1/payments", payment_body(amount=amount, capture_method="manual")).json()["id"]
    drain_outbox()
    return payment_id
