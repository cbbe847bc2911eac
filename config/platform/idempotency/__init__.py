"""Idempotency keys for every `/v1` POST (Django app label `idempotency`). Public face: `execution`
(execute, Resource, checkpoint) and the reaper task in `tasks.py`."""
