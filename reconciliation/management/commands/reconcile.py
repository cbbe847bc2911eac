"""`manage.py reconcile --date YYYY-MM-DD [--report PATH] [--format json] [--processor NAME] [--dry-run]`."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ledger.errors import InvalidAmount
from payments.processors.base import ProcessorError
from reconciliation.report import ReportError, format_minor_units
from reconciliation.services import ReconcileResult, reconcile

#: Exit status while discrepancies of the day are open (so cron and CI can alert). Errors exit 2.
EXIT_DISCREPANCIES = 1
EXIT_ERROR = 2


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"--date must be YYYY-MM-DD, not {value!r}", returncode=EXIT_ERROR) from exc


class Command(BaseCommand):
    """Reconcile a day's settlement report against Clearhouse (reconciliation.services.reconcile).

    Without `--report` the report is fetched from the processor (the sandbox acquirer's
    `GET /v1/reports/settlement?date=`). Prints a human summary (counts, totals per currency in major units,
    each open discrepancy) or, with `--format json`, one JSON object (amounts in minor units). Exit status: 0
    when no discrepancy of the day is open, 1 when some are, 2 on an error (nothing is written then).
    `--dry-run` shows what would change and writes nothing.
    """

    help = "Reconcile a day's settlement report: settle matched captures, record discrepancies."

    def add_arguments(self, parser: CommandParser) -> None:
        """--date (required), --report, --format, --processor, --dry-run."""
        parser.add_argument("--date", required=True, help="The report's UTC day, YYYY-MM-DD.")
        parser.add_argument("--report", help="Read the report from this CSV file instead of fetching it.")
        parser.add_argument("--format", choices=["text", "json"], default="text")
        parser.add_argument("--processor", help="A PROCESSORS name (default: DEFAULT_PROCESSOR).")
        parser.add_argument("--dry-run", action="store_true", help="Show what would change; write nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        """Reconcile, print the summary, exit 1 while discrepancies are open (SystemExit) or 2 on errors."""
        day = _date(options["date"])
        report = None
        if options["report"]:
            path = Path(options["report"])
            try:
                report = path.read_bytes()
            except OSError as exc:
                raise CommandError(f"cannot read {path}: {exc}", returncode=EXIT_ERROR) from exc
        try:
            result = reconcile(
                day=day,
                processor=options["processor"],
                report=report,
                source=str(options["report"] or ""),
                dry_run=options["dry_run"],
            )
        except ProcessorError as exc:
            raise CommandError(f"could not fetch the settlement report: {exc}", returncode=EXIT_ERROR) from exc
        except ReportError as exc:
            raise CommandError(f"malformed settlement report: {exc}", returncode=EXIT_ERROR) from exc
        except KeyError as exc:
            raise CommandError(f"unknown processor {exc}", returncode=EXIT_ERROR) from exc
        if options["format"] == "json":
            self.stdout.write(json.dumps(result.as_dict(), indent=2, sort_keys=True))
        else:
            self.stdout.write(render_text(result))
        if result.open_discrepancies:
            raise SystemExit(EXIT_DISCREPANCIES)


def _money(amount: int | None, currency: str) -> str:
    if amount is None or not currency:
        return "—"
    try:
        return f"{format_minor_units(amount, currency)} {currency}"
    except InvalidAmount:  # an unknown currency in a discrepancy: show minor units rather than fail the summary
        return f"{amount} (minor units) {currency}"


def render_text(result: ReconcileResult) -> str:
    """The human summary: header, row counts, totals per currency, what changed, each open discrepancy."""
    lines = [
        f"Reconciliation of {result.processor} for {result.day.isoformat()}"
        + (" (dry run: nothing written)" if result.dry_run else f", run #{result.run_id}"),
        f"Report sha256 {result.report_sha256[:16]}…, source {result.source}",
        "Rows: " + (", ".join(f"{n} {t}" for t, n in sorted(result.rows.items())) or "none"),
    ]
    for currency, t in sorted(result.totals.items()):
        lines.append(
            f"  {currency}: settled gross {_money(t.get('settled_gross', 0), currency)}, "
            f"fees {_money(t.get('settled_fees', 0), currency)}, net {_money(t.get('settled_net', 0), currency)}; "
            f"refunded {_money(t.get('refunded_gross', 0), currency)}; "
            f"daily fees {_money(t.get('processing_fees', 0), currency)}; "
            f"payout {_money(t.get('payout', 0), currency)}; "
            f"settled by this run {_money(t.get('settled_now', 0), currency)}"
        )
    c = result.changes
    lines.append(
        f"Changes: {c.settled} payments settled, {c.refunds_booked} refunds and {c.fees_booked} fee rows booked, "
        f"discrepancies {c.discrepancies_opened} opened, {c.discrepancies_reopened} reopened, "
        f"{c.discrepancies_updated} updated, {c.discrepancies_closed} closed" + ("" if c.any else " (nothing changed)")
    )
    lines.append(f"Open discrepancies: {len(result.open_discrepancies)}")
    for d in result.open_discrepancies:
        subject = d["payment_id"] or d["psp_reference"] or d["key"]
        lines.append(
            f"  #{d['id']} {d['kind']} {subject}: report {_money(d['report_amount'], d['report_currency'])}, "
            f"ours {_money(d['our_amount'], d['our_currency'])}"
            + (f" ({d['our_status']})" if d["our_status"] else "")
            + f" — {d['detail']}"
        )
    return "\n".join(lines)
