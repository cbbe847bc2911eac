"""Celery tasks of the ledger (thin: they call a service). Scheduled by Celery beat (CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

import structlog
from celery import shared_task

from ledger import sealing

log = structlog.get_logger(__name__)


@shared_task(name="ledger.tasks.seal", acks_late=True, ignore_result=True)
def seal() -> int:
    """Every LEDGER_SEAL_INTERVAL seconds: chain committed, unsealed ledger transactions. Returns how many."""
    report = sealing.chain_seal()
    if report.sealed:
        log.info("ledger.sealed", sealed=report.sealed, head_seq=report.head_seq, head_hash=report.head_hash)
    return report.sealed


@shared_task(name="ledger.tasks.verify", acks_late=True, ignore_result=True)
def verify() -> bool:
    """Nightly: seal, then check every ledger invariant and record the run (the `clearhouse_ledger_verify_*`
    metrics read it). Logs the chain head, so a copy of it lives outside the database. Returns True when ok."""
    outcome = sealing.verification_run(source="task", seal_first=True)
    summary = outcome.summary
    failed = [f"{r.name}: {f}" for r in outcome.results for f in r.failures[:20]]
    if summary.ok:
        log.info("ledger.verified", run=summary.id, head_seq=summary.head_seq, head_hash=summary.head_hash)
    else:
        log.error(
            "ledger.verify_failed", run=summary.id, failures=summary.failures, head_seq=summary.head_seq, first=failed
        )
    return summary.ok
