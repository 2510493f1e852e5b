"""Browser sessions for the pages: the `fd_session` cookie holds the same signed
token the API takes as a bearer token, so a page's JavaScript calls the API
with the cookie. A request the cookie authenticates that could change
something must also carry the page's CSRF token (an HMAC of the session token
with the auth secret), so another site can not borrow the cookie.

Cookies are per host, not per port: one sign-in covers every service on a host.
"""

from __future__ import annotations

import hashlib
import hmac

from flask import g, request

from services.common.auth import Principal, verify_token
from services.common.problems import Problem

SESSION_COOKIE = "fd_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def csrf_failed() -> Problem:
    return Problem(403, "csrf_failed", "CSRF check failed",
                   "This request was signed in by the session cookie but did not carry the page's "
                   "CSRF token. Reload the page and try again.")


def csrf_token(secret: str, session_token: str) -> str:
    return hmac.new(secret.encode(), session_token.encode(), hashlib.sha256).hexdigest()


def session_principal(secret: str, session_token: str) -> Principal:
    """The cookie's principal; an unsafe request must also carry the CSRF token."""
    principal = verify_token(secret, session_token)
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), csrf_token(secret, session_token).encode()):
            raise csrf_failed()
    return principal


def caller_token() -> str:
    """The token the caller signed in with (bearer header, else the session cookie),
    to call another service as them: the one `current_principal()` accepted."""
    return g.caller_token  # type: ignore[no-any-return]
