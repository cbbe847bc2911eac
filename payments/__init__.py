"""Payments: the payment lifecycle (authorize, capture, void, refund, expiry), its events, settlement holds,
postings to the ledger, processor adapters, the `/v1` payment, refund, event and balance endpoints, and the
payment's admin pages.

Public face for other packages (checked by import-linter, .importlinter):
- `payments.services`, `payments.settlement_holds`, `payments.audit`: use cases (writes);
- `payments.selectors`: reads, returning `payments.contracts` (frozen dataclasses) to other apps;
- `payments.events`: public event types and their JSON; `payments.errors`;
- `payments.processors`: the processor adapter interface; `payments.ledger_refs`: ledger owner/reference strings;
- `payments.panels`: panels other apps add to the payment's admin page.
It never imports `fraud`, `webhooks` or `reconciliation`: they subscribe to its events through the outbox
(config.platform.outbox) instead.
"""
