"""Project configuration: settings, URLs, WSGI, Celery and the development stack runner.

Importing this package loads the Celery app so that `shared_task` binds to it (the Celery docs' Django layout).
"""

from config.celery import app as celery_app

__all__ = ("celery_app",)
