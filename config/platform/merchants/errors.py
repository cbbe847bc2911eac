"""Errors of merchants and API keys."""

from __future__ import annotations

from config.platform.errors import DomainError


class TooManyApiKeys(DomainError):
    """A merchant already holds the two active keys a mode allows; revoke one before creating another."""

    code = "api_key_limit"
    status = 409
    title = "Too many active API keys"
