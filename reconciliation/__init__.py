"""Nightly reconciliation of the ledger against processors' settlement reports (not built yet).

It will fetch each processor's report through the processor adapter (payments.processors), match rows to payments
by PSP reference, settle matched captures in the ledger (ledger.services) and record discrepancies.
"""
