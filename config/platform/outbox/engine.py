"""The transactional outbox: durable, ordered, at-least-once work for subscribers, drained by Celery workers.

Writing: `publish(topic, key=…, payload=…)` inserts one row per subscriber of `topic` in the caller's database
transaction, so the work exists if and only if the change that caused it committed. After commit it nudges a
Celery drain task; if the broker is down the nudge is lost but the row is not: the periodic sweep finds it.

Subscribing: apps register handlers at start-up (AppConfig.ready), without the publisher importing them:

    @outbox.subscriber("webhooks.fanout", topics=PUBLIC_EVENT_TYPES, policy=RetryPolicy(max_attempts=10))
    def fanout(message: outbox.Message) -> None: ...

Draining (`drain`): a worker claims due rows with `FOR UPDATE SKIP LOCKED`, only the oldest pending row of each
(subscriber, key) shard, so the events of one payment are handled in order and never by two workers at once. A
claimed row is leased for OUTBOX_LEASE_SECONDS; a worker that dies mid-row loses nothing: the lease expires and
another worker takes the row again. Handlers must therefore be idempotent (they re-read current state). A handler
that raises is retried with capped exponential backoff and full jitter; after the subscriber's `max_attempts`
claims the row is left `dead` (a dead letter) for an operator to inspect and replay (`replay`).
"""

from __future__ import annotations

import os
import random
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from celery import current_app
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from config.platform.outbox.models import OutboxMessage, OutboxStatus

#: The Celery task that drains the outbox (config.platform.outbox.tasks), sent by name so that the engine never
#: imports the tasks module that imports it.
DRAIN_TASK = "payments.tasks.outbox_drain"

log = structlog.get_logger(__name__)


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How often and how patiently a subscriber's failures are retried.

    `max_attempts`: claims before the row is dead-lettered. Delay before attempt n+1 is a random value in
    [d/2, d] with d = min(`max_delay`, `base_delay` × 2^(n−1)) seconds (exponential backoff, capped, jittered).
    A value left None is read, when needed, from the settings `<settings_prefix>_MAX_ATTEMPTS`,
    `_BACKOFF_BASE` and `_BACKOFF_CAP` (default prefix `OUTBOX`).
    """

    max_attempts: int | None = None
    base_delay: float | None = None
    max_delay: float | None = None
    settings_prefix: str = "OUTBOX"

    def resolved(self) -> tuple[int, float, float]:
        """(max_attempts, base_delay seconds, max_delay seconds) with settings filled in."""
        p = self.settings_prefix
        return (
            self.max_attempts if self.max_attempts is not None else int(getattr(settings, f"{p}_MAX_ATTEMPTS")),
            self.base_delay if self.base_delay is not None else float(getattr(settings, f"{p}_BACKOFF_BASE")),
            self.max_delay if self.max_delay is not None else float(getattr(settings, f"{p}_BACKOFF_CAP")),
        )

    def delay_after(self, attempts: int) -> float:
        """Seconds to wait after `attempts` failed attempts (≥ 1)."""
        _, base, cap = self.resolved()
        ceiling = min(cap, base * (2 ** max(attempts - 1, 0)))
        return random.uniform(ceiling / 2, ceiling) if ceiling > 0 else 0.0


@dataclass(frozen=True, kw_only=True)
class Message:
    """What a handler receives: the row's id, topic, ordering key, payload, and which attempt this is (1-based)."""

    id: int
    topic: str
    key: str
    payload: dict[str, Any]
    attempt: int
    max_attempts: int
    request_id: str
    created_at: datetime

    @property
    def is_last_attempt(self) -> bool:
        """True when a failure now dead-letters the row; handlers use it to record a final failure."""
        return self.attempt >= self.max_attempts


Handler = Callable[[Message], None]


@dataclass(frozen=True, kw_only=True)
class Subscriber:
    """A registered handler: unique `name`, the `topics` it receives, its retry `policy`."""

    name: str
    topics: frozenset[str]
    handler: Handler
    policy: RetryPolicy


_subscribers: dict[str, Subscriber] = {}


def subscriber(name: str, *, topics: Iterable[str], policy: RetryPolicy | None = None) -> Callable[[Handler], Handler]:
    """Register the decorated function as the outbox handler `name` for `topics`. Call at import time.

    Raises ValueError when `name` is already registered to another function.
    """

    def register(handler: Handler) -> Handler:
        existing = _subscribers.get(name)
        if existing is not None and existing.handler is not handler:
            raise ValueError(f"outbox subscriber {name!r} is already registered")
        _subscribers[name] = Subscriber(
            name=name, topics=frozenset(topics), handler=handler, policy=policy or RetryPolicy()
        )
        return handler

    return register


def subscribers_for(topic: str) -> list[Subscriber]:
    """The subscribers registered for `topic`, in name order."""
    return sorted((s for s in _subscribers.values() if topic in s.topics), key=lambda s: s.name)


def current_request_id() -> str:
    """The id of the request (or outbox row) being handled, from the structlog context; at most 64 characters."""
    return str(structlog.contextvars.get_contextvars().get("request_id") or "")[:64]


def publish(topic: str, *, key: str, payload: dict[str, Any], delay: float = 0.0) -> list[OutboxMessage]:
    """Write one outbox row per subscriber of `topic` in the current transaction; nudge a drain after commit.

    `key` orders the work (rows of one subscriber and key run in id order); `payload` is JSON-serialisable;
    `delay` postpones the work by that many seconds. Returns the rows written (none if nobody subscribes).
    """
    subs = subscribers_for(topic)
    if not subs:
        return []
    now = timezone.now()
    request_id = current_request_id()
    rows = OutboxMessage.objects.bulk_create(
        [
            OutboxMessage(
                topic=topic,
                subscriber=s.name,
                key=key,
                payload=payload,
                available_at=now + timedelta(seconds=delay),
                created_at=now,
                request_id=request_id,
            )
            for s in subs
        ]
    )
    _nudge_after_commit(countdown=delay)
    return rows


#: Set while this thread runs `drain`: the drain claims again before it stops, so the rows its handlers publish
#: need no nudge of their own (the drain nudges another worker when its batches come back full).
_drain_state = threading.local()


def _nudge_after_commit(*, countdown: float = 0.0) -> None:
    if countdown <= 0 and getattr(_drain_state, "active", False):
        return
    if countdown <= 0:
        if any(getattr(cb, "__name__", "") == "_nudge_soon" for _, cb, *_ in connection.run_on_commit):
            return  # one immediate nudge per transaction is enough

        def _nudge_soon() -> None:
            _coalescer.request()

        transaction.on_commit(_nudge_soon)
        return

    def _nudge() -> None:
        nudge(countdown=countdown)

    transaction.on_commit(_nudge)


class _NudgeCoalescer:
    """Sends the immediate nudges of one process from a background thread, at most one per
    OUTBOX_NUDGE_INTERVAL seconds, and always one after the last request.

    A nudge is a Celery message to the broker (about 10% of the API's CPU when sent after every commit). A drain
    task handles every row due when it runs, so one nudge per interval wakes as much work as one per commit. Every
    `request()` is followed by a nudge sent after it, at most one interval later: no committed row waits for the
    periodic sweep because its nudge was coalesced away. The thread is per process (started lazily, again after
    a fork) and a daemon, so it never holds up shutdown; a nudge lost at exit is picked up by the sweep.
    """

    def __init__(self) -> None:
        self._wanted = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def request(self) -> None:
        """Ask for a nudge soon (non-blocking)."""
        if self._pid != os.getpid() or self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._pid != os.getpid() or self._thread is None or not self._thread.is_alive():
                    self._wanted = threading.Event()
                    self._thread = threading.Thread(target=self._run, name="outbox-nudger", daemon=True)
                    self._pid = os.getpid()
                    self._thread.start()
        self._wanted.set()

    def _run(self) -> None:
        wanted = self._wanted
        while True:
            wanted.wait()
            wanted.clear()
            nudge()
            time.sleep(float(settings.OUTBOX_NUDGE_INTERVAL))


_coalescer = _NudgeCoalescer()


def nudge(*, countdown: float = 0.0) -> bool:
    """Ask a Celery worker to drain the outbox now (or in `countdown` seconds). Never raises.

    Returns False when the broker could not be reached; the rows then wait for the periodic sweep.
    """
    if not settings.OUTBOX_NUDGE:
        return False
    try:
        current_app.send_task(DRAIN_TASK, countdown=countdown or None, retry=False)
        return True
    except Exception as exc:  # broker down: the row is safe in PostgreSQL; the sweep will pick it up
        log.warning("outbox.nudge_failed", error=str(exc), error_type=type(exc).__name__)
        return False


#: The claim walks pending rows in id order (index `outbox_pending_id`) and keeps those with no older pending row in
#: their (subscriber, key) shard. That check must look the shard up through `outbox_key`: planned against a
#: partial index on `status = 'pending'` (whose statistics, taken when nearly every row was done, promise one
#: row) it became a scan of every pending row per candidate, quadratic in the backlog (4.4 s per claim with
#: 6,000 rows pending). `(p.status || '')` is not provably `status = 'pending'`, so no partial index can serve
#: it, and the plan stays the same whatever the statistics say (tests/config/platform/test_outbox.py checks the plan).
_CLAIM_SQL = """
UPDATE payments_outboxmessage AS m
SET locked_until = now() + make_interval(secs => %(lease)s),
    attempts = m.attempts + 1,
    claim_token = %(token)s
WHERE m.id IN (
    SELECT h.id FROM payments_outboxmessage AS h
    WHERE h.status = 'pending'
      AND h.available_at <= now()
      AND (h.locked_until IS NULL OR h.locked_until < now())
      AND NOT EXISTS (
          SELECT 1 FROM payments_outboxmessage AS p
          WHERE p.key = h.key AND p.subscriber = h.subscriber AND p.id < h.id AND (p.status || '') = 'pending'
      )
    ORDER BY h.id
    LIMIT %(batch)s
    FOR UPDATE SKIP LOCKED
)
RETURNING m.id, m.topic, m.subscriber, m.key, m.payload, m.attempts, m.request_id, m.created_at, m.claim_token
"""


@dataclass(frozen=True, kw_only=True)
class _Claimed:
    id: int
    topic: str
    subscriber: str
    key: str
    payload: dict[str, Any]
    attempts: int
    request_id: str
    created_at: datetime
    claim_token: str


def claim(*, batch_size: int, lease_seconds: float | None = None) -> list[_Claimed]:
    """Lease up to `batch_size` due rows, at most one per (subscriber, key) shard, oldest first. One statement (its own
    transaction in autocommit)."""
    import json

    lease = settings.OUTBOX_LEASE_SECONDS if lease_seconds is None else lease_seconds
    token = secrets.token_hex(8)
    # One statement, so it is its own transaction in autocommit (no BEGIN/COMMIT round trips); inside a caller's
    # transaction it joins that one.
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_SQL, {"lease": lease, "token": token, "batch": batch_size})
        rows = cursor.fetchall()
    claimed = [
        _Claimed(
            id=r[0],
            topic=r[1],
            subscriber=r[2],
            key=r[3],
            payload=r[4] if isinstance(r[4], dict) else json.loads(r[4]),
            attempts=r[5],
            request_id=r[6],
            created_at=r[7],
            claim_token=r[8],
        )
        for r in rows
    ]
    return sorted(claimed, key=lambda c: c.id)


def _finish(row: _Claimed, *, error: str | None, max_attempts: int, delay: float) -> str:
    if error is None:
        status = OutboxStatus.DONE
        updated = OutboxMessage.objects.filter(id=row.id, claim_token=row.claim_token).update(
            status=status, processed_at=timezone.now(), locked_until=None, last_error=""
        )
    else:
        status = OutboxStatus.DEAD if row.attempts >= max_attempts else OutboxStatus.PENDING
        updated = OutboxMessage.objects.filter(id=row.id, claim_token=row.claim_token).update(
            status=status,
            available_at=timezone.now() + timedelta(seconds=delay),
            locked_until=None,
            last_error=error[:4000],
            processed_at=timezone.now() if status == OutboxStatus.DEAD else None,
        )
    if not updated:
        log.warning("outbox.lease_lost", message_id=row.id, subscriber=row.subscriber)
    return status


def _mark_done(rows: list[_Claimed]) -> int:
    """Record handled rows as done in one statement (one commit, so one WAL flush, per batch rather than per row).

    Only rows whose lease is still ours (`claim_token`) change. A done-mark lost to a crash re-runs the handler
    once the lease expires, which handlers allow (they are idempotent). Returns rows updated.
    """
    if not rows:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE payments_outboxmessage SET status = %s, processed_at = now(), locked_until = NULL, last_error = ''"
            " WHERE id = ANY(%s) AND claim_token = ANY(%s)",
            [OutboxStatus.DONE, [r.id for r in rows], list({r.claim_token for r in rows})],
        )
        updated = cursor.rowcount
    if updated != len(rows):
        log.warning("outbox.lease_lost", rows=len(rows), updated=updated)
    return updated


def process(row: _Claimed) -> str:
    """Run the subscriber's handler for one claimed row and record the outcome. Returns the row's new status."""
    return _process(row, handled=None)


def _process(row: _Claimed, *, handled: list[_Claimed] | None) -> str:
    """`process`, except that with a `handled` list a success is appended to it for `_mark_done` (by the caller)
    instead of being recorded at once. Failures are always recorded at once."""
    sub = _subscribers.get(row.subscriber)
    bound = structlog.contextvars.bind_contextvars(
        request_id=row.request_id or None, outbox_message_id=row.id, subscriber=row.subscriber, topic=row.topic
    )
    try:
        if sub is None:
            log.error("outbox.unknown_subscriber")
            return _finish(row, error=f"no subscriber named {row.subscriber!r}", max_attempts=0, delay=0)
        max_attempts = sub.policy.resolved()[0]
        message = Message(
            id=row.id,
            topic=row.topic,
            key=row.key,
            payload=row.payload,
            attempt=row.attempts,
            max_attempts=max_attempts,
            request_id=row.request_id,
            created_at=row.created_at,
        )
        try:
            sub.handler(message)
        except Exception as exc:  # any handler failure is retried, then dead-lettered; never swallowed silently
            delay = sub.policy.delay_after(row.attempts)
            status = _finish(row, error=f"{type(exc).__name__}: {exc}", max_attempts=max_attempts, delay=delay)
            log.warning(
                "outbox.handler_failed",
                attempt=row.attempts,
                max_attempts=max_attempts,
                status=status,
                retry_in=round(delay, 3),
                error=str(exc),
                error_type=type(exc).__name__,
                exc_info=status == OutboxStatus.DEAD,
            )
            return status
        if handled is not None:
            handled.append(row)
            return OutboxStatus.DONE
        return _finish(row, error=None, max_attempts=max_attempts, delay=0)
    finally:
        structlog.contextvars.reset_contextvars(**bound)


def drain(*, budget_seconds: float | None = None, batch_size: int | None = None) -> int:
    """Claim and handle due rows until none are left or `budget_seconds` passed. Returns rows handled.

    Successes of one claimed batch are marked done together after the batch (`_mark_done`), or as soon as half
    the lease has passed since the claim, so slow handlers never let a handled row's lease run out. Rows published by
    the handlers send no nudge (this loop claims them); a full batch nudges another worker to share the work, and
    a drain stopped by its budget while rows were still coming nudges another drain, so the work goes on without
    waiting for the periodic sweep.
    """
    budget = settings.OUTBOX_DRAIN_BUDGET if budget_seconds is None else budget_seconds
    size = settings.OUTBOX_BATCH_SIZE if batch_size is None else batch_size
    lease = float(settings.OUTBOX_LEASE_SECONDS)
    deadline = time.monotonic() + budget
    handled = 0
    rows: list[_Claimed] = []
    outer = getattr(_drain_state, "active", False)
    _drain_state.active = True
    try:
        while time.monotonic() < deadline:
            rows = claim(batch_size=size)
            if not rows:
                break
            if len(rows) == size:
                _coalescer.request()  # more work than one batch: wake another worker to share it
            done: list[_Claimed] = []
            claimed_at = time.monotonic()
            try:
                for row in rows:
                    _process(row, handled=done)
                    handled += 1
                    if time.monotonic() - claimed_at > lease / 2:  # slow handlers: record what is done before
                        _mark_done(done)  # the lease runs out and the sweep hands those rows to another worker
                        done = []
            finally:
                _mark_done(done)
    finally:
        _drain_state.active = outer
    if rows:
        nudge()
    return handled


def has_due_work() -> bool:
    """True when some pending row is due and not leased (cheap; used by the periodic sweep)."""
    now = timezone.now()
    return (
        OutboxMessage.objects.filter(status=OutboxStatus.PENDING, available_at__lte=now)
        .exclude(locked_until__gte=now)
        .exists()
    )


def reap_done(*, now: datetime | None = None, batch_size: int = 5000) -> int:
    """Delete rows that were handled (`done`) more than OUTBOX_DONE_RETENTION seconds before `now` (default: the
    current time), oldest first, in batches of `batch_size`, each batch one statement. Returns rows deleted.

    Pending and dead rows are never deleted (dead letters wait for an operator). The events themselves stay in
    `payments_event` and webhook deliveries in their own tables; a done row only records that a subscriber
    handled its message. Called by Celery beat (`config.platform.outbox.tasks.outbox_reap`).
    """
    cutoff = (now or timezone.now()) - timedelta(seconds=float(settings.OUTBOX_DONE_RETENTION))
    deleted = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM payments_outboxmessage WHERE id IN (SELECT id FROM payments_outboxmessage"
                " WHERE status = %s AND processed_at < %s ORDER BY id LIMIT %s)",
                [OutboxStatus.DONE, cutoff, batch_size],
            )
            count = cursor.rowcount
        deleted += count
        if count < batch_size:
            return deleted


def replay(*, message_id: int) -> bool:
    """Put a dead-lettered row back to `pending`, due now, with its attempts reset. Returns False if not dead."""
    updated = OutboxMessage.objects.filter(id=message_id, status=OutboxStatus.DEAD).update(
        status=OutboxStatus.PENDING,
        attempts=0,
        available_at=timezone.now(),
        locked_until=None,
        processed_at=None,
    )
    if updated:
        transaction.on_commit(nudge)
    return bool(updated)
