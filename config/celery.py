"""The Celery application (Redis broker). Settings come from Django settings under the `CELERY_` namespace.

Workers run three kinds of task, all thin wrappers that call a service:
- the outbox drain (config.platform.outbox.tasks): every unit of work (authorize, capture, void, refund, fraud
  scoring, webhook fan-out and delivery) is an outbox row in PostgreSQL first, so a lost broker message costs
  latency (beat's sweep finds the row), never a payment;
- periodic upkeep sent by Celery beat (config/settings/base.py, CELERY_BEAT_SCHEDULE): the outbox sweep and reaper,
  expiry of uncaptured authorizations (payments.tasks), the idempotency key reaper, the ledger's hash-chain sealer
  and nightly `ledger_verify` (ledger.tasks);
- the nightly reconciliation run (reconciliation.tasks).
`autodiscover_tasks()` finds each installed app's `tasks` module.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("clearhouse")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
