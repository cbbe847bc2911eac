"""The shared `/v1` plumbing every app's endpoints use: problem documents (RFC 9457), cursor paging,
`Prefer: wait` (RFC 7240) and waiting for a settled object, per-merchant rate limits, request middleware and
strict serializer fields. A package, not a Django app: it has no tables."""
