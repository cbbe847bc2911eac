"""Django settings of the benchmark stack: production settings, plus what a loopback benchmark needs.

`make bench` runs gunicorn, Celery and the orchestrator with `DJANGO_SETTINGS_MODULE=bench.settings`, which is
`config.settings.production` (DEBUG off, `DJANGO_SECRET_KEY` required) with three differences:

- `WEBHOOKS_ALLOW_PRIVATE_NETWORKS` is read from the environment (production pins it to False), because the
  bench's webhook receiver listens on 127.0.0.1; the harness sets it to true.
- the `bench` app is installed: it registers a no-op outbox subscriber and a no-op Celery task (bench.noop,
  bench.tasks) for the relay-versus-Celery scenario. Neither runs unless the bench publishes to it.
- Celery's default queue is `CELERY_TASK_DEFAULT_QUEUE` (the harness uses its own queue name, so a `make run`
  worker on the same Redis never takes bench tasks, and purging the bench queue never touches anyone else's).
"""

from config.settings.production import *  # noqa: F403 (a settings module extends another)
from config.settings.production import INSTALLED_APPS, env

WEBHOOKS_ALLOW_PRIVATE_NETWORKS = env.bool("WEBHOOKS_ALLOW_PRIVATE_NETWORKS", default=False)
INSTALLED_APPS = [*INSTALLED_APPS, "bench.apps.BenchConfig"]
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
