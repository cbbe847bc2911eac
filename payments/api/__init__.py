"""Merchant API plumbing shared by every `/v1` endpoint: API-key authentication, RFC 9457 problems,
idempotency keys, cursor paging, the card-number guard, and the payments endpoints themselves."""
