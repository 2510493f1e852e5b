"""What every page-serving service shares: the page layout and stylesheet,
friendly HTML for problems (a sign-in-needed page rather than a 401 body), the
money and date filters, the security headers pages carry, and signing in with
the platform's identity provider (identity/signin.py; the session is identity/sessions.py's).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, Response, current_app, g, make_response, render_template, request
from flask.blueprints import BlueprintSetupState
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from identity import sessions
from identity.auth import Principal
from identity.errors import AuthError
from identity.signin import sign_in_blueprint
from services.common import formatting
from services.common.config import Settings
from services.common.errors import DomainError
from services.common.problems import PROBLEM_JSON, Problem, as_problem, from_status
from services.common.web import current_principal, problem_response

PageView = Callable[..., Any]
AnyResponse = TypeVar("AnyResponse", bound=BaseResponse)  # Flask's, or werkzeug's from redirect()
log = logging.getLogger(__name__)
SESSION_ENDED = "Your session has ended; sign in again."


def _settings() -> Settings:
    return current_app.extensions["service_context"].settings  # type: ignore[no-any-return]


def security_headers(response: AnyResponse) -> AnyResponse:
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
    response = make_response(render_template(template, problem=problem, request_id=g.get("request_id")),
                             problem.status)
    return security_headers(response)


def _answer(error: DomainError | AuthError) -> BaseResponse:
    """A page for a browser, problem+json for anything else."""
    problem = as_problem(error)
    if request.accept_mimetypes.best_match(["text/html", PROBLEM_JSON]) == "text/html":
        return problem_page(problem)
    return problem_response(problem)


def _in_browser_words(problem: Problem) -> Problem:
    """A session cookie that expired or is not ours reads as what it is to a person."""
    if problem.status == 401 and problem.code in ("token_expired", "invalid_token"):
        return Problem(401, problem.code, "Sign in needed", SESSION_ENDED)
    return problem


def page(view: PageView) -> Callable[..., Response]:
    """A page for a signed-in person: the view gets the principal first; a
    problem (not signed in, not found, not allowed), and any other error,
    becomes an HTML page."""
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            principal = current_principal()
            response = make_response(view(principal, *args, **kwargs))
        except (DomainError, AuthError) as error:
            return problem_page(_in_browser_words(as_problem(error)))
        except HTTPException as error:
            return problem_page(from_status(error.code or 500, error.description))
        except Exception:
            log.exception("unhandled error in a page (request %s)", g.get("request_id"))
            return problem_page(from_status(500, "Something went wrong on our side; quote the request "
                                                 "id when you contact support."))
        return security_headers(response)
    return wrapper


def _back_here(home: str) -> str:
    """Where signing in from this page leads: back here (home from the sign-in routes)."""
    return home if request.path.startswith("/sign-in") else request.full_path.rstrip("?")


# The pages' navigation: (label, the service serving it, its path).
NAV = (("Checkout", "checkout", "/checkout"), ("Trials", "trials", "/trials"),
       ("Billing", "checkout", "/billing"))


def navigation() -> list[tuple[str, str, bool]]:
    """(label, URL, is this page) per entry; another service's pages are on its own host."""
    settings = _settings()
    return [(label, path if service == settings.service else f"{settings.service_urls[service]}{path}",
             service == settings.service and request.path.startswith(path))
            for label, service, path in NAV]


def _template_globals(home: str) -> dict[str, Any]:
    principal: Principal | None = g.get("principal")
    sid = sessions.session_id()
    return {
        "home": home,
        "nav": navigation() if principal else [],
        "signed_in_as": principal.email if principal else None,
        "csrf_token": sessions.csrf_token(_settings().auth_secret, sid) if principal and sid else "",
        "sign_in_url": f"/sign-in?{urlencode({'next': _back_here(home)})}",
    }


def pages_blueprint(home: str, settings: Settings) -> Blueprint:
    """Layout, stylesheet, filters and sign-in for a service whose main page is `home`."""
    blp = Blueprint("pages", __name__, template_folder="templates", static_folder="static",
                    static_url_path="/static/pages")
    blp.app_context_processor(lambda: _template_globals(home))
    blp.add_app_template_filter(formatting.money, "money")
    blp.add_app_template_filter(formatting.long_date, "long_date")

    @blp.record_once
    def _sign_in(state: BlueprintSetupState) -> None:
        # The verifier is the app's own (web.create_service_app), built once.
        verifier = state.app.extensions["token_verifier"]
        state.app.register_blueprint(sign_in_blueprint(settings, verifier, home, _answer))

    return blp
