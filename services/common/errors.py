"""Domain errors: what a rule refused, in the domain's words.

Plain Python with no HTTP in it, so domains and use cases can raise them; the
HTTP edge (`services/common/web.py`, `pages.py`) answers each kind with its
status as problem+json (`problems.status_of`). `code` is part of the API
contract: clients switch on it.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A refusal the caller can act on; the subclass says what kind it is."""

    def __init__(self, code: str, title: str, detail: str | None = None, *,
                 retry_after: int | None = None, **extra: Any) -> None:
        super().__init__(detail or title)
        self.code = code
        self.title = title
        self.detail = detail
        # Seconds after which the same request may succeed (a busy or unknown state).
        self.retry_after = retry_after
        self.extra = extra


class Malformed(DomainError):
    """The request can not be taken as sent (a missing key, a bad signature)."""


class Invalid(DomainError):
    """The request breaks a rule (an unknown plan, too few seats)."""


class Conflict(DomainError):
    """The request is fine but the state it meets is not (already subscribed)."""


class NotFound(DomainError):
    """No such thing, or none the caller may see."""


class Forbidden(DomainError):
    """The caller may see this but not do that."""


class PaymentFailed(DomainError):
    """The payment was refused (a declined card)."""


class Unavailable(DomainError):
    """A provider we depend on did not answer: the same request may succeed later."""


class ProviderRefused(DomainError):
    """A provider we depend on refused our request: retrying will not help."""


def not_found(what: str, ident: object) -> NotFound:
    return NotFound(f"{what}_not_found", f"{what.replace('_', ' ').capitalize()} not found",
                    f"No {what.replace('_', ' ')} with id {ident}.")
