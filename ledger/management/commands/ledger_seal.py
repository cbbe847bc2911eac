"""`manage.py ledger_seal`: append committed, unsealed ledger transactions to the hash chain."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from ledger import sealing


class Command(BaseCommand):
    """Seal (hash-chain) every committed ledger transaction not sealed yet; print how many and the new head.

    Celery beat does this every LEDGER_SEAL_INTERVAL seconds (ledger.tasks.seal). `--full` looks at the whole
    ledger instead of the recent tail (after a ledger transaction committed more than LEDGER_SEAL_LOOKBACK
    seconds after it was created, which `ledger_verify` reports under `sealed_in_time`).
    """

    help = "Append unsealed ledger transactions to the hash chain."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--full", action="store_true", help="scan the whole ledger, not only the recent tail")

    def handle(self, *args: Any, **options: Any) -> None:
        report = sealing.chain_seal(full=options["full"])
        self.stdout.write(f"sealed {report.sealed} ledger transaction(s); head #{report.head_seq} {report.head_hash}")
