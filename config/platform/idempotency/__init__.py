"""Idempotency keys for every `/v1` POST (Django app label `idempotency`). Public face: `execution`
(execute, Resource, checkpoint) and the reaper task in `tasks.py`; behind it `storage` (the key rows), `cache`
(the Redis fast path) and `answers` (the header, the body and the flow's own answers)."""
