"""The platform every Clearhouse app leans on, kept apart from the product apps that use it.

- `config.platform.outbox`: the transactional outbox (a Django app): publish in the caller's transaction,
  subscribe, claim and drain in Celery workers.
- `config.platform.merchants`: merchants and API keys (a Django app): key hashing, the per-process key cache,
  DRF authentication, the admin and the key commands.
- `config.platform.idempotency`: idempotency keys and their stored answers (a Django app).
- `config.platform.http`: the shared `/v1` plumbing (a package): problem documents, paging, `Prefer`, rate
  limits, middleware, strict fields, waiting for a settled object.
- `config.platform.admin`, `config.platform.errors`, `config.platform.ids`, `config.platform.redisconn`,
  `config.platform.staff_groups`: small shared pieces.

The platform imports no product app (`payments`, `ledger`, `fraud`, `webhooks`, `reconciliation`); an
import-linter contract checks it. docs/architecture.md says why it lives under `config/`.
"""
