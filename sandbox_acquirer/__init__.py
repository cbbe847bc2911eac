"""Sandbox acquirer: a stand-alone fake card processor for development, tests and demos.

A stdlib WSGI application (plus ``iso4217``) with its own SQLite storage. It imports nothing from
Django or from Clearhouse; Clearhouse talks to it only over HTTP. See ``docs/sandbox-acquirer.md``.

Run it with ``gunicorn sandbox_acquirer.app:application`` or
``python -m sandbox_acquirer --port 8001``.
"""
