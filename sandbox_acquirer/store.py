"""SQLite storage of the sandbox acquirer.

One SQLite file shared by every thread and every (gunicorn) worker process. Safe under concurrency
because: the database runs in WAL mode; every connection has a ``busy_timeout``; each request opens
its own connection (:meth:`Store.session`) and closes it afterwards; every write runs in a
``BEGIN IMMEDIATE`` transaction (:meth:`Session.write`), so read-check-write sequences are serialized
and never hit an upgrade deadlock.

Tables: ``tokens`` (minted tokens, never a card number), ``authorizations``, ``modifications``
(captures, cancels, refunds) and ``idempotency_keys``. Amounts are ``int`` minor units; times are
stored both as ISO-8601 UTC text (``created_at``) and as integer microseconds since the Unix epoch
(``created_us``, used for ordering and day filters).
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

#: Seconds a connection waits for another writer before failing with "database is locked".
BUSY_TIMEOUT_SECONDS = 30.0

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MICROSECOND = timedelta(microseconds=1)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    token       TEXT PRIMARY KEY,
    card_token  TEXT NOT NULL,
    exp_month   INTEGER NOT NULL,
    exp_year    INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    created_us  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS authorizations (
    psp_reference    TEXT PRIMARY KEY,
    reference        TEXT NOT NULL,
    merchant_account TEXT NOT NULL,
    amount           INTEGER NOT NULL CHECK (amount > 0),
    currency         TEXT NOT NULL,
    token            TEXT NOT NULL,
    brand            TEXT NOT NULL,
    bin              TEXT NOT NULL,
    last4            TEXT NOT NULL,
    country          TEXT NOT NULL,
    exp_month        INTEGER NOT NULL,
    exp_year         INTEGER NOT NULL,
    fingerprint      TEXT NOT NULL,
    result           TEXT NOT NULL CHECK (result IN ('authorised', 'refused')),
    refusal_reason   TEXT,
    state            TEXT NOT NULL CHECK (state IN ('authorised', 'refused', 'captured', 'cancelled')),
    captured_amount  INTEGER NOT NULL DEFAULT 0,
    refunded_amount  INTEGER NOT NULL DEFAULT 0,
    created_at       TEXT NOT NULL,
    created_us       INTEGER NOT NULL,
    CHECK (captured_amount >= 0 AND captured_amount <= amount),
    CHECK (refunded_amount >= 0 AND refunded_amount <= captured_amount)
);
CREATE TABLE IF NOT EXISTS modifications (
    seq                INTEGER PRIMARY KEY AUTOINCREMENT,
    psp_reference      TEXT NOT NULL UNIQUE,
    original_reference TEXT NOT NULL REFERENCES authorizations (psp_reference),
    kind               TEXT NOT NULL CHECK (kind IN ('capture', 'cancel', 'refund')),
    amount             INTEGER CHECK (amount IS NULL OR amount > 0),
    currency           TEXT NOT NULL,
    created_at         TEXT NOT NULL,
    created_us         INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS modifications_by_time ON modifications (created_us, seq);
CREATE INDEX IF NOT EXISTS modifications_by_original ON modifications (original_reference);
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key          TEXT PRIMARY KEY,
    request_hash TEXT NOT NULL,
    owner        TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('in_flight', 'done')),
    status       INTEGER,
    body         BLOB,
    content_type TEXT,
    created_us   INTEGER NOT NULL,
    completed_us INTEGER
);
"""


#: Columns given to :meth:`Session.insert_authorization`, in insert order.
AUTHORIZATION_COLUMNS: tuple[str, ...] = (
    "psp_reference",
    "reference",
    "merchant_account",
    "amount",
    "currency",
    "token",
    "brand",
    "bin",
    "last4",
    "country",
    "exp_month",
    "exp_year",
    "fingerprint",
    "result",
    "refusal_reason",
    "state",
    "created_at",
    "created_us",
)


def utc_now() -> tuple[str, int]:
    """Return the current time as ``(iso, micros)``: ISO-8601 UTC text with microseconds and a
    ``Z`` suffix (e.g. ``"2026-05-09T07:35:25.123456Z"``) and integer microseconds since the epoch."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), (now - _EPOCH) // _ONE_MICROSECOND


def micros_to_datetime(micros: int) -> datetime:
    """Return the aware UTC ``datetime`` for ``micros`` (int microseconds since the Unix epoch)."""
    return _EPOCH + timedelta(microseconds=micros)


def datetime_to_micros(moment: datetime) -> int:
    """Return integer microseconds since the Unix epoch for an aware ``datetime``.
    Raises ``TypeError`` for a naive datetime."""
    return (moment - _EPOCH) // _ONE_MICROSECOND


class LostIdempotencyClaim(Exception):
    """Raised by :meth:`Session.complete_idempotency_key` when this request no longer owns the
    in-flight record of its key (it was released or taken over after its lease expired)."""


@dataclass(frozen=True)
class IdempotencyClaim:
    """Outcome of :meth:`Session.claim_idempotency_key`.

    ``outcome`` is ``"claimed"`` (this request now owns the key and must process it),
    ``"replay"`` (a stored response exists: ``status`` int and ``body`` bytes, ``content_type``
    str), ``"in_use"`` (another request is processing the key) or ``"mismatch"`` (the key was used
    with a different request).
    """

    outcome: str
    status: int | None = None
    body: bytes | None = None
    content_type: str | None = None


class Store:
    """The acquirer's SQLite database file.

    ``Store(path)`` creates the parent directory and the schema if needed and switches the file to
    WAL mode. ``path`` is a filesystem path (``str`` or path-like); ``":memory:"`` is not supported
    because every request opens its own connection. Raises ``sqlite3.Error`` if the file cannot be
    initialised (after retrying for a while when another process holds a lock).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        if self.path == ":memory:" or self.path.startswith("file:"):
            raise ValueError("the sandbox acquirer needs a database file path")
        parent = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(parent, exist_ok=True)
        self._initialise()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    def _initialise(self) -> None:
        deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
        while True:
            try:
                conn = self._connect()
                try:
                    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                    if str(mode).lower() != "wal":
                        raise sqlite3.OperationalError(f"could not enable WAL mode (got {mode!r})")
                    conn.execute("BEGIN IMMEDIATE")
                    try:
                        for statement in _SCHEMA.split(";"):
                            if statement.strip():
                                conn.execute(statement)
                        conn.execute("COMMIT")
                    except BaseException:
                        conn.execute("ROLLBACK")
                        raise
                finally:
                    conn.close()
                return
            except sqlite3.OperationalError as exc:
                # Several workers may start at once; switching to WAL needs a moment alone.
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """Open a new connection for the current request/thread, yield a :class:`Session` over it,
        and close it afterwards. Sessions must not be shared between threads."""
        conn = self._connect()
        try:
            yield Session(conn)
        finally:
            conn.close()


class Session:
    """Data access over one connection (one request, one thread).

    Methods that change data must be called inside :meth:`write` unless documented otherwise.
    Rows are returned as plain ``dict`` objects (column name -> value) or ``None`` when absent.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._in_transaction = False

    # -- transactions ---------------------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[Session]:
        """Run the block in a ``BEGIN IMMEDIATE`` transaction: commit on success, roll back on any
        exception (re-raised). Waits up to ``BUSY_TIMEOUT_SECONDS`` for other writers, then raises
        ``sqlite3.OperationalError``. Not re-entrant (raises ``RuntimeError``)."""
        with self._transaction("BEGIN IMMEDIATE"):
            yield self

    @contextmanager
    def read(self) -> Iterator[Session]:
        """Run the block in a deferred (read) transaction, giving a consistent snapshot."""
        with self._transaction("BEGIN"):
            yield self

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[None]:
        if self._in_transaction:
            raise RuntimeError("nested transactions are not supported")
        self.conn.execute(begin)
        self._in_transaction = True
        try:
            yield
        except BaseException:
            self._in_transaction = False
            self._rollback()
            raise
        self._in_transaction = False
        try:
            self.conn.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def _rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def _one(self, sql: str, params: tuple) -> dict | None:
        cursor = self.conn.execute(sql, params)
        try:
            row = cursor.fetchone()
        finally:
            cursor.close()  # ends the statement (and its implicit read snapshot) right away
        return dict(row) if row is not None else None

    # -- idempotency ----------------------------------------------------------------------------

    def claim_idempotency_key(self, key: str, request_hash: str, owner: str, lease_us: int) -> IdempotencyClaim:
        """Atomically look up ``key`` and, if unused, insert an in-flight record owned by ``owner``.

        Runs its own write transaction (do not call inside :meth:`write`). ``request_hash`` is the
        hex digest identifying the request (method, path, canonical body). An in-flight record older
        than ``lease_us`` microseconds is considered abandoned (its process died) and is taken over.
        Returns an :class:`IdempotencyClaim`; a different ``request_hash`` gives ``"mismatch"``.
        """
        _, now_us = utc_now()
        with self.write():
            row = self._one(
                "SELECT request_hash, owner, state, status, body, content_type, created_us"
                " FROM idempotency_keys WHERE key = ?",
                (key,),
            )
            if row is None:
                self.conn.execute(
                    "INSERT INTO idempotency_keys (key, request_hash, owner, state, created_us)"
                    " VALUES (?, ?, ?, 'in_flight', ?)",
                    (key, request_hash, owner, now_us),
                )
                return IdempotencyClaim("claimed")
            if row["request_hash"] != request_hash:
                return IdempotencyClaim("mismatch")
            if row["state"] == "done":
                return IdempotencyClaim("replay", row["status"], bytes(row["body"]), row["content_type"])
            if now_us - row["created_us"] > lease_us:
                self.conn.execute(
                    "UPDATE idempotency_keys SET owner = ?, created_us = ? WHERE key = ?",
                    (owner, now_us, key),
                )
                return IdempotencyClaim("claimed")
            return IdempotencyClaim("in_use")

    def complete_idempotency_key(self, key: str, owner: str, status: int, body: bytes, content_type: str) -> None:
        """Store the final response (``status`` int, ``body`` bytes) of the in-flight ``key``.

        Call inside :meth:`write`, in the same transaction as the request's own writes, so both
        commit together. Raises :class:`LostIdempotencyClaim` if ``owner`` no longer holds the key
        (the caller's transaction must then roll back).
        """
        _, now_us = utc_now()
        cursor = self.conn.execute(
            "UPDATE idempotency_keys SET state = 'done', status = ?, body = ?, content_type = ?, completed_us = ?"
            " WHERE key = ? AND owner = ? AND state = 'in_flight'",
            (status, body, content_type, now_us, key, owner),
        )
        if cursor.rowcount != 1:
            raise LostIdempotencyClaim(key)

    def release_idempotency_key(self, key: str, owner: str) -> None:
        """Delete the in-flight record of ``key`` if ``owner`` still holds it (after a 5xx), so a
        retry is processed afresh. Runs its own write transaction."""
        with self.write():
            self.conn.execute(
                "DELETE FROM idempotency_keys WHERE key = ? AND owner = ? AND state = 'in_flight'",
                (key, owner),
            )

    # -- tokens ---------------------------------------------------------------------------------

    def insert_token(self, token: str, card_token: str, exp_month: int, exp_year: int, fingerprint: str) -> None:
        """Store a minted ``token`` standing for the fixed token ``card_token`` (no card number).
        Raises ``sqlite3.IntegrityError`` if ``token`` exists. Call inside :meth:`write`."""
        created_at, created_us = utc_now()
        self.conn.execute(
            "INSERT INTO tokens (token, card_token, exp_month, exp_year, fingerprint, created_at, created_us)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (token, card_token, exp_month, exp_year, fingerprint, created_at, created_us),
        )

    def token_exists(self, token: str) -> bool:
        """Return whether a minted ``token`` exists."""
        return self._one("SELECT 1 FROM tokens WHERE token = ?", (token,)) is not None

    def get_token(self, token: str) -> dict | None:
        """Return the minted token row ``{token, card_token, exp_month, exp_year, fingerprint,
        created_at, created_us}`` or ``None``."""
        return self._one("SELECT * FROM tokens WHERE token = ?", (token,))

    # -- authorizations and modifications -------------------------------------------------------

    def new_psp_reference(self) -> str:
        """Return a fresh random 16-digit PSP reference (first digit non-zero) used by no
        authorization or modification, retrying on collision. Call inside :meth:`write` and insert
        the row in the same transaction so the check stays valid."""
        while True:
            candidate = str(10**15 + secrets.randbelow(9 * 10**15))
            clash = self._one(
                "SELECT 1 FROM authorizations WHERE psp_reference = ?"
                " UNION ALL SELECT 1 FROM modifications WHERE psp_reference = ?",
                (candidate, candidate),
            )
            if clash is None:
                return candidate

    def insert_authorization(self, row: dict) -> None:
        """Insert an authorization. ``row`` maps every column of ``authorizations`` except
        ``captured_amount``/``refunded_amount`` (they start at 0) to its value (amount in int minor
        units). Call inside :meth:`write`. Raises ``KeyError`` for a missing column and
        ``sqlite3.IntegrityError`` on a duplicate PSP reference or a violated check."""
        self.conn.execute(
            "INSERT INTO authorizations (psp_reference, reference, merchant_account, amount, currency, token,"
            " brand, bin, last4, country, exp_month, exp_year, fingerprint, result, refusal_reason, state,"
            " created_at, created_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            tuple(row[column] for column in AUTHORIZATION_COLUMNS),
        )

    def get_authorization(self, psp_reference: str) -> dict | None:
        """Return the authorization row (all columns) for ``psp_reference`` or ``None``."""
        return self._one("SELECT * FROM authorizations WHERE psp_reference = ?", (psp_reference,))

    def mark_captured(self, psp_reference: str, amount: int) -> None:
        """Set the authorization to ``captured`` with ``captured_amount`` = ``amount`` (int minor
        units). Call inside :meth:`write`. Raises ``sqlite3.IntegrityError`` if ``amount`` exceeds
        the authorized amount."""
        self.conn.execute(
            "UPDATE authorizations SET state = 'captured', captured_amount = ? WHERE psp_reference = ?",
            (amount, psp_reference),
        )

    def mark_cancelled(self, psp_reference: str) -> None:
        """Set the authorization to ``cancelled``. Call inside :meth:`write`."""
        self.conn.execute(
            "UPDATE authorizations SET state = 'cancelled' WHERE psp_reference = ?",
            (psp_reference,),
        )

    def set_refunded_amount(self, psp_reference: str, refunded_amount: int) -> None:
        """Set the authorization's total ``refunded_amount`` (int minor units). Call inside
        :meth:`write`. Raises ``sqlite3.IntegrityError`` if it would exceed the captured amount."""
        self.conn.execute(
            "UPDATE authorizations SET refunded_amount = ? WHERE psp_reference = ?",
            (refunded_amount, psp_reference),
        )

    def insert_modification(
        self,
        psp_reference: str,
        original_reference: str,
        kind: str,
        amount: int | None,
        currency: str,
        created_at: str,
        created_us: int,
    ) -> None:
        """Insert a capture/cancel/refund (``kind``) of ``original_reference``; ``amount`` is int
        minor units (``None`` for a cancel). Call inside :meth:`write`."""
        self.conn.execute(
            "INSERT INTO modifications"
            " (psp_reference, original_reference, kind, amount, currency, created_at, created_us)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (psp_reference, original_reference, kind, amount, currency, created_at, created_us),
        )

    def settlement_entries(self, start_us: int, end_us: int) -> list[dict]:
        """Return the captures and refunds created in ``[start_us, end_us)`` (int microseconds since
        the epoch), oldest first, each joined with its authorization.

        Each dict has ``kind`` (``"capture"``/``"refund"``), ``modification_reference``, ``amount``
        (int minor units), ``currency``, ``created_us``, and the authorization's ``psp_reference``,
        ``reference``, ``merchant_account``, ``brand`` and ``country``.
        """
        rows = self.conn.execute(
            "SELECT m.kind, m.psp_reference AS modification_reference, m.amount, m.currency, m.created_us,"
            " a.psp_reference, a.reference, a.merchant_account, a.brand, a.country"
            " FROM modifications AS m JOIN authorizations AS a ON a.psp_reference = m.original_reference"
            " WHERE m.kind IN ('capture', 'refund') AND m.created_us >= ? AND m.created_us < ?"
            " ORDER BY m.created_us, m.seq",
            (start_us, end_us),
        ).fetchall()
        return [dict(row) for row in rows]
