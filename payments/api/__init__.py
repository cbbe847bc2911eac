"""The merchant API under /v1: API-key authentication, per-merchant rate limits, RFC 9457 problems, idempotency
keys with crash recovery, `Prefer: wait`, cursor paging, the card-number and body-size guards, the OpenAPI
description, and the payments, refunds and events endpoints themselves."""
