"""RFC 9457 problem+json errors with a stable `code` a client can switch on.

Use cases raise `Problem`; the HTTP layer turns it (and every other error,
including Werkzeug's and webargs' validation errors) into problem+json. A
response never carries a stack trace: unexpected errors are logged with the
request id and answered with a generic 500.
"""

from __future__ import annotations

from typing import Any

PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    """A failure the client can act on. `code` is part of the API contract."""

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra

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


def not_found(what: str, ident: object) -> Problem:
    return Problem(404, f"{what}_not_found", f"{what.replace('_', ' ').capitalize()} not found",
                   f"No {what.replace('_', ' ')} with id {ident}.")
