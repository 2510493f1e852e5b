"""Browser sessions for the pages: Flask's signed `fd_session` cookie (HttpOnly,
SameSite=Lax, Secure in production) holding the token the identity provider
issued at sign-in (identity/signin.py) and a random session id. The
token is verified on every request exactly as a bearer token is, so the
cookie's own signature (AUTH_SECRET) vouches for nothing but its idle
lifetime: whoever holds AUTH_SECRET still can not make a session for someone
the provider did not sign in. The cookie lapses after SESSION_IDLE_MINUTES
without a request (each request renews it) and when the provider's token
expires, whichever comes first.

A request the cookie authenticates that could change something must also carry
the page's CSRF token (an HMAC of the session id with the auth secret), so
another site can not borrow the cookie.

Cookies are per host, not per port: one sign-in covers every service on a host.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import timedelta

from flask import Flask, g, request, session

from identity.auth import Principal, invalid_token
from identity.errors import AuthError
from identity.settings import IdentitySettings

SESSION_COOKIE = "fd_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
TOKEN, SESSION_ID = "token", "sid"


def configure(app: Flask, settings: IdentitySettings) -> None:
    """The session cookie every service reads (one sign-in covers them all)."""
    app.config.update(
        SECRET_KEY=settings.auth_secret, SESSION_COOKIE_NAME=SESSION_COOKIE, SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_SECURE=settings.is_production,
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=settings.session_idle_minutes),
        SESSION_REFRESH_EACH_REQUEST=True)


def start(token: str) -> None:
    """What the sign-in callback does once the provider vouched for someone: a
    fresh session (nothing kept from before, so no fixation) holding their token."""
    session.clear()
    session[TOKEN] = token
    session[SESSION_ID] = secrets.token_urlsafe(32)
    session.permanent = True


def end() -> None:
    session.clear()


def session_id() -> str | None:
    value = session.get(SESSION_ID)
    return value if isinstance(value, str) else None


def csrf_failed() -> AuthError:
    return AuthError(403, "csrf_failed", "CSRF check failed",
                     "This request was signed in by the session cookie but did not carry the page's "
                     "CSRF token. Reload the page and try again.")


def csrf_token(secret: str, sid: str) -> str:
    return hmac.new(secret.encode(), sid.encode(), hashlib.sha256).hexdigest()


def session_token() -> str | None:
    """The session's token; a cookie we can not read (expired, tampered, another
    stack's) is a session that ended."""
    token = session.get(TOKEN)
    if isinstance(token, str) and token:
        return token
    if request.cookies.get(SESSION_COOKIE) and not session:
        raise invalid_token()
    return None


def session_principal(verify: Callable[[str], Principal], secret: str, token: str) -> Principal:
    """The session's principal; an unsafe request must also carry the CSRF token."""
    principal = verify(token)
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        sid = session_id() or ""
        if not sid or not hmac.compare_digest(sent.encode(), csrf_token(secret, sid).encode()):
            raise csrf_failed()
    return principal


def caller_token() -> str:
    """The token the caller signed in with (bearer header, else the session's),
    to call another service as them: the one `current_principal()` accepted."""
    return g.caller_token  # type: ignore[no-any-return]
