"""Nightly reconciliation of Clearhouse against processors' settlement reports.

Fetches a processor's Settlement details report through the processor adapter (payments.processors), parses it
(reconciliation.report), matches each row to our payments and refunds by PSP reference (reconciliation.matching,
through payments.selectors), settles matched captures in the ledger (reconciliation.booking, through
ledger.services) and records discrepancies (reconciliation.discrepancies); reconciliation.services runs it all.
Run by `manage.py reconcile` and nightly by Celery beat (reconciliation.tasks).
"""
