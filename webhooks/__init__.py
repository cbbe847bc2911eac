"""Webhooks: merchants' endpoints, and signed, retried delivery of payment events to them.

It subscribes to every public payment event through the outbox (`webhooks.fanout`), creates one delivery per
subscribed endpoint, and delivers each through the outbox again (`webhooks.deliver`), so retries, backoff and dead
letters are the outbox's. Requests are signed per the Standard Webhooks spec (standardwebhooks library).
"""
