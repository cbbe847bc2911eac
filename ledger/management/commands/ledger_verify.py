"""`manage.py ledger_verify`: check the ledger's invariants; exit status 1 on any break."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ledger.verify import run_checks


class Command(BaseCommand):
    """Check every ledger invariant (ledger.verify.run_checks) and print what was checked.

    Exit status: 0 when every check passes, 1 when any fails (each failure names the ledger transaction).
    `--format json` prints one JSON object instead of text.
    """

    help = "Verify the ledger's invariants; exits non-zero on any break."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--format", choices=["text", "json"], default="text")

    def handle(self, *args: Any, **options: Any) -> None:
        results = run_checks()
        if options["format"] == "json":
            self.stdout.write(
                json.dumps(
                    {
                        "ok": all(r.ok for r in results),
                        "checks": [
                            {"name": r.name, "examined": r.examined, "ok": r.ok, "failures": r.failures}
                            for r in results
                        ],
                    }
                )
            )
        else:
            for r in results:
                status = self.style.SUCCESS("ok") if r.ok else self.style.ERROR("FAILED")
                self.stdout.write(f"{status:>8}  {r.name}: {r.description} ({r.examined} examined)")
                for failure in r.failures[:50]:
                    self.stdout.write(f"          - {failure}")
                if len(r.failures) > 50:
                    self.stdout.write(f"          … and {len(r.failures) - 50} more")
        if not all(r.ok for r in results):
            raise CommandError("ledger verification failed", returncode=1)
