"""`manage.py ledger_verify`: check the ledger's invariants and the hash chain; exit status 1 on any break."""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ledger import sealing, selectors
from ledger.progress import ProgressBar

#: With `--progress auto`, a bar is drawn for ledgers with at least this many sealed ledger transactions.
LARGE_LEDGER = 10_000


class Command(BaseCommand):
    """Check every ledger invariant (ledger.verify.run_checks), print what was checked, record the run.

    Exit status: 0 when every check passes, 1 when any fails (each failure names the ledger transaction or the
    account). `--seal` first chains unsealed ledger transactions (as the nightly task does). `--format json`
    prints one JSON object instead of text. `--progress` draws a bar on stderr while the hash chain is re-hashed:
    `auto` (default) for a large ledger on a terminal, `always` or `never`.
    """

    help = "Verify the ledger's invariants and hash chain; exits non-zero on any break."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--format", choices=["text", "json"], default="text")
        parser.add_argument("--seal", action="store_true", help="seal unsealed ledger transactions first")
        parser.add_argument("--progress", choices=["auto", "always", "never"], default="auto")

    def handle(self, *args: Any, **options: Any) -> None:
        status = selectors.chain_status()
        show = options["progress"] == "always" or (
            options["progress"] == "auto" and sys.stderr.isatty() and status.sealed >= LARGE_LEDGER
        )
        bar = ProgressBar(label="hash chain", unit="sealed ledger transactions", stream=self.stderr) if show else None
        outcome = sealing.verification_run(source="command", seal_first=options["seal"], progress=bar)
        if bar is not None:
            bar.close()
        results, summary = outcome.results, outcome.summary
        status = selectors.chain_status()
        if options["format"] == "json":
            self.stdout.write(
                json.dumps(
                    {
                        "ok": summary.ok,
                        "run": summary.id,
                        "chain": {
                            "sealed": status.sealed,
                            "head_seq": status.head_seq,
                            "head_hash": status.head_hash,
                            "unsealed": status.unsealed,
                        },
                        "checks": [
                            {"name": r.name, "examined": r.examined, "ok": r.ok, "failures": r.failures}
                            for r in results
                        ],
                    }
                )
            )
        else:
            for r in results:
                mark = self.style.SUCCESS("ok") if r.ok else self.style.ERROR("FAILED")
                self.stdout.write(f"{mark:>8}  {r.name}: {r.description} ({r.examined} examined)")
                for failure in r.failures[:50]:
                    self.stdout.write(f"          - {failure}")
                if len(r.failures) > 50:
                    self.stdout.write(f"          … and {len(r.failures) - 50} more")
            self.stdout.write(
                f"hash chain: {status.sealed} sealed, head #{status.head_seq} {status.head_hash[:16]}…; "
                f"{status.unsealed} not sealed yet (run `manage.py ledger_seal` or wait for beat)"
            )
            self.stdout.write(f"recorded as verification run {summary.id}: {'ok' if summary.ok else 'FAILED'}")
        if not summary.ok:
            raise CommandError(f"ledger verification failed: {summary.failures} broken invariant(s)", returncode=1)
