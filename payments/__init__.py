"""Payments: merchants and API keys, the payment lifecycle, events and the transactional outbox.

Public face for other apps: `payments.services`, `payments.selectors`, `payments.outbox` (subscribe to events),
`payments.events` (event types) and `payments.api` (shared HTTP plumbing: auth, errors, idempotency, paging).
It never imports `fraud`, `webhooks` or `reconciliation`; they subscribe to its events instead.
"""
