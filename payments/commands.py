"""Payments commands: internal work orders for the payments worker (payments.handlers), never shown to merchants.

A command is an outbox topic that asks the worker to do one step at the processor (capture, void, refund, cancel an
expired authorization), published in the transaction that requested it and keyed by payment id, so one payment's
steps run in order. Commands have no Event row, never reach webhooks or `GET /v1/events`, and are not in
`payments.events.PUBLIC_EVENT_TYPES` (the events merchants see). Their topic strings are stored in outbox rows:
never rename them.
"""

from __future__ import annotations

#: Capture `amount` (minor units) of an authorized payment. Payload: {"payment_id", "amount"}.
COMMAND_CAPTURE = "payments.capture"
#: Void an authorized payment. Payload: {"payment_id"}.
COMMAND_VOID = "payments.void"
#: Send a pending refund to the processor. Payload: {"payment_id", "refund_id"}.
COMMAND_REFUND = "payments.refund"
#: Best effort: cancel an expired authorization at the processor. Payload: {"payment_id"}.
COMMAND_CANCEL_EXPIRED = "payments.cancel_expired"
