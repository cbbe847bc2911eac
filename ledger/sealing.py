"""Ledger operations off the posting path: sealing the hash chain and recording verification runs.

`chain_seal` appends committed ledger transactions to the SHA-256 chain (ledger.chain), from Celery beat
(ledger.tasks.seal) and `manage.py ledger_seal`; `verification_run` checks every invariant (ledger.verify) and
records the outcome, nightly (ledger.tasks.verify) and from `manage.py ledger_verify`. Both return contracts
(ledger.contracts). Postings never take the sealers' lock (docs/ledger.md, "Hash chain").
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from ledger import chain, verify
from ledger.contracts import CheckReport, SealReport, VerificationOutcome, VerificationSummary
from ledger.models import LedgerSeal, VerificationRun

#: pg_advisory_xact_lock key that serialises sealers (only sealers take it; postings never do).
SEAL_LOCK_ID = 0x1ED6E5EA1


def _chain_head() -> tuple[int, str]:
    head = LedgerSeal.objects.order_by("-seq").values_list("seq", "hash").first()
    return head if head is not None else (0, chain.GENESIS)


def _unsealed_ids(*, limit: int, full: bool, max_sealed_id: int) -> list[int]:
    lookback = float(getattr(settings, "LEDGER_SEAL_LOOKBACK", 3600.0))
    sql = """
        SELECT t.id FROM ledger_transaction t
        WHERE NOT EXISTS (SELECT 1 FROM ledger_seal s WHERE s.transaction_id = t.id)
    """
    params: list[object] = []
    if not full:
        sql += " AND (t.id > %s OR t.created_at >= now() - make_interval(secs => %s))"
        params += [max_sealed_id, lookback]
    sql += " ORDER BY t.id LIMIT %s"
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, limit])
        return [row[0] for row in cursor.fetchall()]


def chain_seal(*, batch_size: int = 2000, full: bool = False, max_batches: int | None = None) -> SealReport:
    """Append every committed, unsealed ledger transaction to the hash chain, in id order; returns what it did.

    Runs from Celery beat every LEDGER_SEAL_INTERVAL seconds (ledger.tasks.seal), never in the posting path:
    postings take no chain lock. Sealers serialise on a PostgreSQL advisory lock; each batch of `batch_size` is
    its own transaction. A ledger transaction that commits after a higher id was sealed is chained in a later
    run (the chain's order is sealing order). Without `full`, only ids above the highest sealed id or created in
    the last LEDGER_SEAL_LOOKBACK seconds are considered (an index range, not a scan of the ledger); `full=True`
    scans everything (`manage.py ledger_seal --full`).
    """
    sealed = 0
    batches = 0
    while max_batches is None or batches < max_batches:
        batches += 1
        with transaction.atomic(durable=True):
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SEAL_LOCK_ID])
            seq, prev = _chain_head()
            max_sealed_id = LedgerSeal.objects.order_by("-transaction_id").values_list("transaction_id", flat=True)
            ids = _unsealed_ids(limit=batch_size, full=full, max_sealed_id=max_sealed_id.first() or 0)
            contents = chain.content_hashes(ids)
            links = []
            for txn_id in ids:
                seq += 1
                link = chain.link_hash(prev_hash=prev, seq=seq, transaction_id=txn_id, content_hash=contents[txn_id])
                links.append(
                    LedgerSeal(seq=seq, transaction_id=txn_id, content_hash=contents[txn_id], prev_hash=prev, hash=link)
                )
                prev = link
            LedgerSeal.objects.bulk_create(links)
        sealed += len(ids)
        if len(ids) < batch_size:
            break
    head_seq, head_hash = _chain_head()
    return SealReport(sealed=sealed, head_seq=head_seq, head_hash=head_hash)


def verification_run(
    *, source: str, seal_first: bool = False, progress: Callable[[int, int], None] | None = None
) -> VerificationOutcome:
    """Check every ledger invariant (ledger.verify.run_checks) and record the outcome (VerificationRun).

    `source` says who ran it (`command`, `task`). `seal_first` chains unsealed ledger transactions before
    checking (the nightly task does). `progress(done, total)` is called while the hash chain is re-hashed.
    The recorded run feeds the `clearhouse_ledger_verify_*` metrics. Never raises for a broken invariant: the
    outcome says so (`summary.ok`, `summary.failures`).
    """
    if seal_first:
        chain_seal()
    started = timezone.now()
    results = verify.run_checks(progress=progress)
    finished = timezone.now()
    failures = sum(len(r.failures) for r in results)
    head_seq, head_hash = _chain_head()
    run = VerificationRun.objects.create(
        source=source,
        started_at=started,
        finished_at=finished,
        ok=failures == 0,
        failures=failures,
        report=[{"name": r.name, "examined": r.examined, "ok": r.ok, "failures": r.failures[:100]} for r in results],
        head_seq=head_seq,
        head_hash=head_hash if head_seq else "",
    )
    summary = VerificationSummary(
        id=run.pk,
        source=source,
        ok=run.ok,
        failures=failures,
        started_at=started,
        finished_at=finished,
        head_seq=head_seq,
        head_hash=run.head_hash,
    )
    reports = tuple(
        CheckReport(name=r.name, description=r.description, examined=r.examined, failures=tuple(r.failures))
        for r in results
    )
    return VerificationOutcome(summary=summary, results=reports)
