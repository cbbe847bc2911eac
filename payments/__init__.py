"""Payments: the payment lifecycle (authorize, capture, void, refund, expiry), its events, settlement holds,
postings to the ledger, processor adapters, the `/v1` payment, refund, event and balance endpoints, and the
payment's admin pages.

Public face for other apps: `payments.services` and `payments.selectors` (use cases and reads),
`payments.contracts` (frozen dataclasses crossing the boundary), `payments.events` (public event types),
`payments.errors`, `payments.settlement_holds` (settlement holds), `payments.staff` (audited staff actions),
`payments.audit`, `payments.settlement` (reconciliation's reads), `payments.risk` (fraud's facts) and
`payments.panels` (admin panels). It never imports `fraud`, `webhooks` or `reconciliation`: they subscribe to
its events through the outbox (config.platform.outbox) instead.
"""
