"""The Django project package: the composition root (settings, URLs, WSGI, Celery, `/metrics`, health probes, the
embedded services and the `make run` stack runner) and, apart from it in `config.platform`, the platform every
app leans on (outbox, merchants and keys, idempotency, the `/v1` plumbing). docs/architecture.md says why.

Importing this package loads the Celery app so that `shared_task` binds to it (the Celery docs' Django layout).
"""

from config.celery import app as celery_app

__all__ = ("celery_app",)
