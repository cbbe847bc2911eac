"""Fraud scoring, off the request path.

Subscribes to `payment.authorized` through the outbox (fraud.handlers), scores each payment with rules that
finance staff edit in the admin (fraud.models, fraud.rules; velocity in Redis: fraud.velocity), records every
fired rule with its contribution, and puts payments at or above the hold score on hold through payments'
services (payments.settlement_holds). See docs/architecture.md.
"""
