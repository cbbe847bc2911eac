"""The Clearhouse benchmark (`make bench`, `make bench QUICK=1`): see bench/__main__.py and docs/performance.md.

Also a Django app (installed only by bench.settings) holding the no-op outbox subscriber and Celery task of the
relay scenario. Importing this package has no side effects.
"""
