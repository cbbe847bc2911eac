"""The Celery application (Redis broker). Settings come from Django settings under the `CELERY_` namespace.

Workers only drain the transactional outbox (payments.tasks); every unit of work lives in PostgreSQL first, so a
lost broker message costs latency (the periodic sweep finds the row), never a payment.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("clearhouse")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
