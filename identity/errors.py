"""Why a caller is turned away. Signing in is HTTP by nature, so an `AuthError`
carries its status and headers (WWW-Authenticate); the services' HTTP edge
answers it as problem+json (services/common/problems.py `as_problem`) and
the pages as a page, without this library knowing either."""

from __future__ import annotations


class AuthError(Exception):
    def __init__(self, status: int, code: str, title: str, detail: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail or title)
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.headers = headers or {}
