"""The transactional outbox (Django app label `outbox`). Public face: `config.platform.outbox.engine`
(publish, subscriber, Message, RetryPolicy, drain, replay) and the Celery tasks in `tasks.py` (sent by name)."""
