"""RFC 9457 problem+json errors with a stable `code` a client can switch on.

Domains and use cases raise `DomainError`s (`services/common/errors.py`),
sign-in raises `AuthError`s (identity/errors.py); the HTTP edge turns them,
its own `Problem`s (bad input) and every other error (Werkzeug's and webargs'
validation errors) into problem+json. A response never carries a stack trace: unexpected errors are
logged with the request id and answered with a generic 500.
"""

from __future__ import annotations

from typing import Any

from identity.errors import AuthError
from services.common import errors
from services.common.errors import DomainError

PROBLEM_JSON = "application/problem+json"


# The HTTP status each kind of domain error is answered with.
STATUS_OF_KIND: dict[type[DomainError], int] = {
    errors.Malformed: 400,
    errors.PaymentFailed: 402,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.Invalid: 422,
    errors.ProviderRefused: 502,
    errors.Unavailable: 503,
}


class Problem(DomainError):
    """A failure the client can act on, with its HTTP status: what the HTTP edge
    raises itself (rate limits, bad input) and what a domain error or an AuthError becomes."""

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(code, title, detail, **extra)
        self.status = status
        self.headers = headers or {}

    def to_dict(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "code": self.code,
        }
        if self.detail:
            body["detail"] = self.detail
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


# Generic HTTP errors mapped to stable codes.
HTTP_CODES: dict[int, tuple[str, str]] = {
    400: ("bad_request", "Bad request"),
    401: ("unauthenticated", "Authentication required"),
    403: ("forbidden", "Not allowed"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    409: ("conflict", "Conflict"),
    413: ("payload_too_large", "Request body too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
    422: ("validation_failed", "The request body or parameters are invalid"),
    429: ("rate_limited", "Too many requests"),
    500: ("internal_error", "Internal server error"),
    503: ("service_unavailable", "Service unavailable"),
}


def from_status(status: int, detail: str | None = None, **extra: Any) -> Problem:
    code, title = HTTP_CODES.get(status, ("http_error", "HTTP error"))
    return Problem(status, code, title, detail, **extra)


def status_of(error: DomainError) -> int:
    if isinstance(error, Problem):
        return error.status
    return next((status for kind, status in STATUS_OF_KIND.items() if isinstance(error, kind)), 500)


def as_problem(error: DomainError | AuthError) -> Problem:
    """The problem+json a domain error, or a caller turned away, is answered with."""
    if isinstance(error, Problem):
        return error
    if isinstance(error, AuthError):
        return Problem(error.status, error.code, error.title, error.detail, error.headers)
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after is not None else None
    return Problem(status_of(error), error.code, error.title, error.detail, headers, **error.extra)
