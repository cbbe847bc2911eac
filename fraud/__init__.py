"""Fraud scoring, off the request path (not built yet: see docs/architecture.md).

It will subscribe to `payment.authorized` through the outbox (payments.outbox.subscriber), score each payment
with rules that finance staff edit in the admin, and put risky payments on hold through payments' services.
"""
