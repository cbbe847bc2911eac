"""The sandbox acquirer's WSGI application: configuration, the route table and the entry points.

``create_app()`` builds a :class:`SandboxAcquirer` (a WSGI callable); ``application`` (for
``gunicorn sandbox_acquirer.app:application``) is created from the environment on first
access, so importing this module has no side effects. The protocol is described in
``docs/sandbox-acquirer.md``.

The application is composed of :class:`~sandbox_acquirer.routing.Router` (WSGI plumbing:
authentication, routing, idempotent POSTs; helpers in :mod:`sandbox_acquirer.protocol`) and one
mixin per resource from :mod:`sandbox_acquirer.resources` (tokens, authorizations, modifications,
the settlement report).

Environment (read when the app is created): ``SANDBOX_ACQUIRER_DB`` (SQLite path, default
``.data/sandbox_acquirer.sqlite3``), ``SANDBOX_ACQUIRER_API_KEY`` (default ``sandbox_acquirer_key``),
``SANDBOX_ACQUIRER_SLOW_SECONDS`` (default 15 seconds), ``SANDBOX_ACQUIRER_COMPANY_ACCOUNT`` (default
``ClearhouseCompany``) and ``SANDBOX_ACQUIRER_MERCHANT_ACCOUNT`` (default ``ClearhouseSandbox``).
"""

from __future__ import annotations

import math
import os
import re
import threading

from .protocol import Handler
from .resources import AuthorizationResource, ModificationResource, SettlementReportResource, TokenResource
from .routing import Router
from .store import BUSY_TIMEOUT_SECONDS, Store

DEFAULT_DB_PATH = os.path.join(".data", "sandbox_acquirer.sqlite3")
DEFAULT_API_KEY = "sandbox_acquirer_key"
DEFAULT_SLOW_SECONDS = 15.0
DEFAULT_COMPANY_ACCOUNT = "ClearhouseCompany"
DEFAULT_MERCHANT_ACCOUNT = "ClearhouseSandbox"


class SandboxAcquirer(Router, TokenResource, AuthorizationResource, ModificationResource, SettlementReportResource):
    """The WSGI application (callable as ``app(environ, start_response)``; thread-safe).

    Holds only configuration: ``store`` (:class:`Store`), ``api_key`` (str), ``slow_seconds``
    (float seconds ``tok_timeout`` sleeps), ``company_account`` and ``merchant_account`` (report
    names; the latter is also the default ``merchant_account`` of authorizations). Each request
    gets its own SQLite connection. Use :func:`create_app` to build one.
    """

    def __init__(
        self,
        store: Store,
        api_key: str,
        slow_seconds: float,
        company_account: str = DEFAULT_COMPANY_ACCOUNT,
        merchant_account: str = DEFAULT_MERCHANT_ACCOUNT,
    ) -> None:
        self.store = store
        self.api_key = api_key
        self.slow_seconds = slow_seconds
        self.company_account = company_account
        self.merchant_account = merchant_account
        # An in-flight idempotency record older than this is treated as abandoned (its worker died).
        self.idempotency_lease_us = int(max(300.0, 2 * slow_seconds + 2 * BUSY_TIMEOUT_SECONDS + 60.0) * 1_000_000)
        authorization = r"/v1/authorizations/(?P<psp_reference>[^/]+)"
        self.routes: list[tuple[re.Pattern[str], dict[str, Handler]]] = [
            (re.compile(r"^/healthz$"), {"GET": self.healthz}),
            (re.compile(r"^/v1/tokens$"), {"POST": self.create_token}),
            (re.compile(r"^/v1/authorizations$"), {"POST": self.create_authorization}),
            (re.compile(rf"^{authorization}$"), {"GET": self.get_authorization}),
            (re.compile(rf"^{authorization}/captures$"), {"POST": self.create_capture}),
            (re.compile(rf"^{authorization}/cancels$"), {"POST": self.create_cancel}),
            (re.compile(rf"^{authorization}/refunds$"), {"POST": self.create_refund}),
            (re.compile(r"^/v1/reports/settlement$"), {"GET": self.settlement_report}),
        ]


def _slow_seconds_from(value: float | str) -> float:
    seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"SANDBOX_ACQUIRER_SLOW_SECONDS must be a non-negative number, got {value!r}")
    return seconds


def create_app(
    db_path: str | None = None, api_key: str | None = None, slow_seconds: float | None = None
) -> SandboxAcquirer:
    """Build the WSGI app.

    Arguments override the environment, which is read now: ``db_path`` (SQLite file path;
    ``SANDBOX_ACQUIRER_DB``, default ``.data/sandbox_acquirer.sqlite3``; created with its directory
    if missing), ``api_key`` (``SANDBOX_ACQUIRER_API_KEY``, default ``sandbox_acquirer_key``),
    ``slow_seconds`` (float seconds ``tok_timeout`` sleeps; ``SANDBOX_ACQUIRER_SLOW_SECONDS``, default
    15). Report names come from ``SANDBOX_ACQUIRER_COMPANY_ACCOUNT`` / ``SANDBOX_ACQUIRER_MERCHANT_ACCOUNT``.
    Raises ``ValueError`` for a negative/non-numeric slow_seconds or an empty API key, and
    ``sqlite3.Error`` if the database cannot be initialised.
    """
    env = os.environ
    path = db_path if db_path is not None else env.get("SANDBOX_ACQUIRER_DB") or DEFAULT_DB_PATH
    key = api_key if api_key is not None else env.get("SANDBOX_ACQUIRER_API_KEY") or DEFAULT_API_KEY
    if not key:
        raise ValueError("the API key must not be empty")
    slow = _slow_seconds_from(
        slow_seconds if slow_seconds is not None else env.get("SANDBOX_ACQUIRER_SLOW_SECONDS") or DEFAULT_SLOW_SECONDS
    )
    return SandboxAcquirer(
        Store(path),
        key,
        slow,
        company_account=env.get("SANDBOX_ACQUIRER_COMPANY_ACCOUNT") or DEFAULT_COMPANY_ACCOUNT,
        merchant_account=env.get("SANDBOX_ACQUIRER_MERCHANT_ACCOUNT") or DEFAULT_MERCHANT_ACCOUNT,
    )


_application: SandboxAcquirer | None = None
_application_lock = threading.Lock()


def __getattr__(name: str) -> SandboxAcquirer:
    """Create ``application`` (``create_app()`` from the environment) on first access, once per
    process, so that importing this module neither reads the environment nor touches the disk."""
    if name != "application":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    global _application
    with _application_lock:
        if _application is None:
            _application = create_app()
        return _application
