"""Prometheus metrics at /metrics: django-prometheus's request metrics plus Clearhouse's business gauges.

The business series are read from PostgreSQL at scrape time, so they are exact whichever process did the work:
- `clearhouse_payments{status}`: payments by current status (gauge);
- `clearhouse_payment_events_total{type}`: events ever emitted, by type (a counter: events are never deleted);
- `clearhouse_outbox_pending{subscriber}`, `clearhouse_outbox_dead_letters{subscriber}` (gauges);
- `clearhouse_outbox_lag_seconds`: age in seconds of the oldest due pending outbox row (0 when none).
With several gunicorn workers set PROMETHEUS_MULTIPROC_DIR (as `make run` does) so request metrics add up.

Ledger series (LedgerCollector, from ledger.selectors; docs/ledger.md, docs/operations.md):
- `clearhouse_ledger_verify_failures`: broken invariants found by the last `ledger_verify` run (gauge);
- `clearhouse_ledger_verify_last_run_timestamp_seconds`, `clearhouse_ledger_verify_last_success_timestamp_seconds`
  (Unix time; absent before the first run);
- `clearhouse_ledger_verify_runs_total{result="ok"|"failed"}` (counter);
- `clearhouse_ledger_sealed_transactions`, `clearhouse_ledger_unsealed_transactions`,
  `clearhouse_ledger_oldest_unsealed_seconds`: how far the hash chain reaches.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import prometheus_client
from django.db import connection
from django.http import HttpRequest, HttpResponse
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ledger import selectors as ledger_selectors


class BusinessCollector(Collector):
    """Collects the business gauges and counters listed in the module docstring (four small SQL queries)."""

    def collect(self) -> Iterator[Metric]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT status, count(*) FROM payments_payment GROUP BY status")
            payments = GaugeMetricFamily("clearhouse_payments", "Payments by current status", labels=["status"])
            for status, count in cursor.fetchall():
                payments.add_metric([status], count)
            yield payments

            cursor.execute("SELECT type, count(*) FROM payments_event GROUP BY type")
            events = CounterMetricFamily(
                "clearhouse_payment_events", "Payment events emitted, by type", labels=["type"]
            )
            for event_type, count in cursor.fetchall():
                events.add_metric([event_type], count)
            yield events

            cursor.execute(
                "SELECT subscriber, status, count(*) FROM payments_outboxmessage "
                "WHERE status IN ('pending', 'dead') GROUP BY subscriber, status"
            )
            pending = GaugeMetricFamily("clearhouse_outbox_pending", "Outbox rows waiting", labels=["subscriber"])
            dead = GaugeMetricFamily(
                "clearhouse_outbox_dead_letters", "Outbox rows dead-lettered", labels=["subscriber"]
            )
            for subscriber, status, count in cursor.fetchall():
                (pending if status == "pending" else dead).add_metric([subscriber], count)
            yield pending
            yield dead

            cursor.execute(
                "SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(available_at)), 0) FROM payments_outboxmessage "
                "WHERE status = 'pending' AND available_at <= now()"
            )
            lag = GaugeMetricFamily("clearhouse_outbox_lag_seconds", "Age of the oldest due outbox row (seconds)")
            lag.add_metric([], float(cursor.fetchone()[0] or 0))
            yield lag


class LedgerCollector(Collector):
    """Collects the ledger's verification and hash-chain series listed in the module docstring."""

    def collect(self) -> Iterator[Metric]:
        last = ledger_selectors.verification_last()
        failures = GaugeMetricFamily(
            "clearhouse_ledger_verify_failures", "Broken ledger invariants found by the last ledger_verify run"
        )
        failures.add_metric([], last.failures if last else 0)
        yield failures
        if last is not None:
            yield GaugeMetricFamily(
                "clearhouse_ledger_verify_last_run_timestamp_seconds",
                "When the last ledger_verify run finished (Unix time)",
                value=last.finished_at.timestamp(),
            )
        last_ok = ledger_selectors.verification_last(ok=True)
        if last_ok is not None:
            yield GaugeMetricFamily(
                "clearhouse_ledger_verify_last_success_timestamp_seconds",
                "When the last passing ledger_verify run finished (Unix time)",
                value=last_ok.finished_at.timestamp(),
            )
        runs = CounterMetricFamily("clearhouse_ledger_verify_runs", "ledger_verify runs, by result", labels=["result"])
        for ok, count in ledger_selectors.verification_counts().items():
            runs.add_metric(["ok" if ok else "failed"], count)
        yield runs
        status = ledger_selectors.chain_status()
        yield GaugeMetricFamily(
            "clearhouse_ledger_sealed_transactions", "Ledger transactions in the hash chain", value=status.sealed
        )
        yield GaugeMetricFamily(
            "clearhouse_ledger_unsealed_transactions",
            "Committed ledger transactions not yet in the hash chain",
            value=status.unsealed,
        )
        yield GaugeMetricFamily(
            "clearhouse_ledger_oldest_unsealed_seconds",
            "Age of the oldest unsealed ledger transaction (seconds; 0 when none)",
            value=status.oldest_unsealed_age,
        )


def metrics_view(request: HttpRequest) -> HttpResponse:
    """The Prometheus text exposition of process metrics (multiprocess-aware) and BusinessCollector."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        process_registry = prometheus_client.CollectorRegistry()
        multiprocess.MultiProcessCollector(process_registry)
    else:
        process_registry = prometheus_client.REGISTRY
    business_registry = prometheus_client.CollectorRegistry()
    business_registry.register(BusinessCollector())
    business_registry.register(LedgerCollector())
    body = prometheus_client.generate_latest(process_registry) + prometheus_client.generate_latest(business_registry)
    return HttpResponse(body, content_type=prometheus_client.CONTENT_TYPE_LATEST)
