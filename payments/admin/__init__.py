"""Admin pages for payments: payments (with every related record on one page), the settlement hold queue and
the audit trail (package payments.admin; the outbox's page is in payments.admin.outbox).

Nothing here edits or deletes payments, events, holds or audit records: every page is read-only and every change
goes through a staff use case (payments.staff) that calls the same service as the API, checks a permission,
takes a typed reason and writes an audit record in the same transaction.
"""

from payments.admin import outbox, payment, settlement_holds

__all__ = ["outbox", "payment", "settlement_holds"]
