"""The base of every domain error in Clearhouse, and the two that every app shares.

Each error carries a stable machine `code`, the HTTP `status` the API answers with, and a short `title`; the
`/v1` error handler (config.platform.http.problems) turns any DomainError into an RFC 9457 problem document.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base class: `code` is a stable machine code, `status` the HTTP status, `title` a short summary.

    `detail` is the human explanation; keyword arguments (`extra`) become extension members of the problem
    document (for example `param="id"`).
    """

    code = "domain_error"
    status = 400
    title = "Request refused"

    def __init__(self, detail: str = "", **extra: object) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra


class NotFound(DomainError):
    """The object does not exist for this merchant and mode (another merchant's objects are 'not found' too)."""

    code = "not_found"
    status = 404
    title = "Not found"


class ReasonRequired(DomainError):
    """A staff action (void, release a hold, replay, resolve) needs a typed reason; it was empty or too long."""

    code = "reason_required"
    status = 400
    title = "A reason is required"
