"""What every page-serving service shares: `GET /sign-in?token=...&next=/path`
(sets the session cookie, see sessions.py), the page layout and stylesheet,
friendly HTML for problems (a sign-in-needed page rather than a 401 body), the
money and date filters, and the security headers pages carry.

The platform's login is out of scope: it would set the same cookie.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, g, make_response, redirect, render_template, request

from services.common.auth import Principal, verify_token
from services.common.config import Settings
from services.common.problems import Problem
from services.common.sessions import SESSION_COOKIE, csrf_token
from services.common.web import current_principal

PageView = Callable[..., Any]
CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£"}


def _settings() -> Settings:
    return current_app.extensions["service_context"].settings  # type: ignore[no-any-return]


def local_path(target: str | None, default: str) -> str:
    """`target` if it is a path on this site, else `default` (never an open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.isprintable():
        return default
    return target


def money(cents: int, currency: str = "usd") -> str:
    """174000 -> "$1,740.00" (the pages' JavaScript formats the same way)."""
    code = currency.upper()
    sign = "-" if cents < 0 else ""
    units, rest = divmod(abs(cents), 100)
    symbol = CURRENCY_SYMBOLS.get(code)
    return f"{sign}{symbol}{units:,}.{rest:02d}" if symbol else f"{sign}{units:,}.{rest:02d} {code}"


def long_date(value: str | date | datetime) -> str:
    """"2027-11-21" or a datetime -> "November 21, 2027" (UTC)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value) if len(value) > 10 else date.fromisoformat(value)
    return f"{value:%B} {value.day}, {value.year}"


def security_headers(response: Response) -> Response:
    """Pages run only our scripts and Stripe.js, and are never framed (clickjacking)."""
    stripe = "{0.scheme}://{0.netloc}".format(urlsplit(_settings().stripe_js_url))
    response.headers["Content-Security-Policy"] = "; ".join([
        "default-src 'self'", f"script-src 'self' {stripe}",
        f"connect-src 'self' {stripe} https://api.stripe.com",
        f"frame-src {stripe} https://js.stripe.com https://hooks.stripe.com",
        "img-src 'self' data:", "style-src 'self'", "base-uri 'none'", "form-action 'self'",
        "frame-ancestors 'none'"])
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"  # personal data; and no stale CSRF token
    return response


def problem_page(problem: Problem) -> Response:
    """A problem as a page: signing in for 401s, the problem's own words otherwise."""
    template = "pages/sign_in_needed.html" if problem.status == 401 else "pages/problem.html"
    response = make_response(render_template(template, problem=problem), problem.status)
    return security_headers(response)


def page(view: PageView) -> Callable[..., Response]:
    """A page for a signed-in person: the view gets the principal first; a
    problem (not signed in, not found, not allowed) becomes an HTML page."""
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            principal = current_principal()
            response = make_response(view(principal, *args, **kwargs))
        except Problem as problem:
            return problem_page(problem)
        return security_headers(response)
    return wrapper


def _template_globals(home: str) -> dict[str, Any]:
    principal: Principal | None = g.get("principal")
    session = request.cookies.get(SESSION_COOKIE)
    return {
        "home": home,
        "signed_in_as": principal.email if principal else None,
        "csrf_token": csrf_token(_settings().auth_secret, session) if principal and session else "",
        "show_dev_hints": not _settings().is_production,
    }


def pages_blueprint(home: str) -> Blueprint:
    """Sign-in, layout, stylesheet and filters for a service whose main page is `home`."""
    blp = Blueprint("pages", __name__, template_folder="templates", static_folder="static",
                    static_url_path="/static/pages")
    blp.app_context_processor(lambda: _template_globals(home))
    blp.add_app_template_filter(money, "money")
    blp.add_app_template_filter(long_date, "long_date")

    @blp.get("/sign-in")
    def sign_in() -> Response:
        """Verify the token, keep it in the session cookie, go back to `next`."""
        token = request.args.get("token", "")
        target = local_path(request.args.get("next"), home)
        try:
            verify_token(_settings().auth_secret, token)
        except Problem:
            return problem_page(Problem(401, "invalid_token", "Sign-in link not valid",
                                        "This sign-in link is not valid or has expired."))
        response = redirect(target, 303)
        response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="Lax",
                            secure=_settings().is_production, path="/")
        return security_headers(response)

    return blp
