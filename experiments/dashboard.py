"""The growth dashboard (`python -m experiments serve`, port 8004): the
experiments with their status and exposures, and each one's report.

For the growth team only: someone with the `growth` or `admin` role, signed in
with the platform's identity provider (the 401 page links to `/sign-in`; the
session is the services' own, identity/sessions.py) or sending
`Authorization: Bearer <token>`. Errors are problem+json with a stable `code`
for JSON clients and a page for browsers; never a stack trace.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid

from flask import Flask, Response, g, jsonify, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from experiments.catalog import Catalog, UnknownExperiment
from experiments.definitions import PayloadUnreadable
from experiments.render import render_csv, render_html, render_page
from experiments.store import last_collected_at
from flags.client import Flags
from identity import sessions
from identity.auth import CHALLENGE, Principal, TokenVerifier, bearer_token, verifier_for
from identity.errors import AuthError
from identity.signin import local_path, sign_in_blueprint
from persistence.db import make_engine
from services.common.config import Settings
from services.common.problems import PROBLEM_JSON, Problem, as_problem, from_status

log = logging.getLogger(__name__)

ROLES = frozenset({"growth", "admin"})
PUBLIC = frozenset({"healthz", "sign_in.sign_in", "sign_in.callback", "sign_in.sign_out"})
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                               "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    # Not no-referrer: browsers then send `Origin: null` on the sign-out form's own POST.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def create_app(settings: Settings | None = None, catalog: Catalog | None = None) -> Flask:
    settings = settings or Settings.from_env("experiments")
    if catalog is None:
        catalog = Catalog.load(settings.growthbook_payload_file)
        if settings.growthbook_api_host and settings.growthbook_client_key:
            flags = Flags.from_settings(settings).start()
            catalog = dataclasses.replace(catalog, live_payload=lambda: flags.payload.raw)
    engine = make_engine(settings.database_url)
    app = Flask("experiments")
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep fields in reading order
    app.config["MAX_CONTENT_LENGTH"] = 16 * 1024
    app.extensions["experiments_store"] = engine
    sessions.configure(app, settings)
    verifier = verifier_for(settings)
    app.register_blueprint(sign_in_blueprint(settings, verifier, "/",
                                             lambda error: _problem_response(as_problem(error))))

    @app.before_request
    def _authenticate() -> None:
        g.request_id = uuid.uuid4().hex
        if request.endpoint not in PUBLIC:
            g.principal = _growth_member(verifier)

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers.update(SECURITY_HEADERS)
        response.headers["X-Request-Id"] = g.get("request_id", "")
        return response

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok", service="experiments")

    @app.get("/")
    def experiments() -> str:
        return render_page("list.html", {"dashboard": True, "principal": g.principal,
                                         "experiments": catalog.summaries(engine),
                                         "collected_at": last_collected_at(engine)})

    @app.get("/experiments/<key>.json")
    def report_json(key: str) -> Response:
        return jsonify(catalog.report(engine, key).to_dict())

    @app.get("/experiments/<key>.csv")
    def report_csv(key: str) -> Response:
        return Response(render_csv(catalog.report(engine, key)), mimetype="text/csv", headers={
            "Content-Disposition": f'attachment; filename="{key}.csv"'})

    @app.get("/experiments/<key>")
    def report_page(key: str) -> str:
        return render_html(catalog.report(engine, key), dashboard=True, principal=g.principal)

    @app.errorhandler(Problem)
    @app.errorhandler(AuthError)
    def _problem(error: Problem | AuthError) -> Response:
        return _problem_response(as_problem(error))

    @app.errorhandler(Exception)
    def _error(error: Exception) -> Response:
        return _problem_response(_as_problem(error))

    return app


def _growth_member(verifier: TokenVerifier) -> Principal:
    header = request.headers.get("Authorization")
    token = bearer_token(header) if header else sessions.session_token()
    if not token:
        raise Problem(401, "unauthenticated", "Sign in required",
                      "This dashboard is for the growth team: sign in, or send "
                      "'Authorization: Bearer <token>'.", headers=CHALLENGE)
    principal = verifier.verify(token)
    if not principal.roles & ROLES:
        raise Problem(403, "growth_role_required", "Growth team only",
                      "Your account does not carry the growth or admin role.")
    return principal


def _as_problem(error: Exception) -> Problem:
    if isinstance(error, UnknownExperiment):
        return Problem(404, "experiment_not_found", "Experiment not found",
                       f"No experiment {error.key!r}; known experiments: {', '.join(error.known)}.")
    if isinstance(error, PayloadUnreadable):
        log.error("feature flag payload unreadable: %s", error)
        return Problem(503, "payload_unavailable", "Experiment definitions unavailable",
                       "The feature flag payload can not be read; try again shortly.")
    if isinstance(error, SQLAlchemyError):
        log.error("event store unavailable: %s", type(error).__name__)
        return Problem(503, "store_unavailable", "Event store unavailable",
                       "The experiment event store can not be read; try again shortly.")
    if isinstance(error, HTTPException):
        return from_status(error.code or 500, error.description if (error.code or 500) < 500 else None)
    log.exception("unhandled error (request %s)", g.get("request_id"))
    return from_status(500, "Something went wrong on our side; quote the request id when you report it.")


def _problem_response(problem: Problem) -> Response:
    if _wants_json():
        response = jsonify(problem.to_dict(instance=g.get("request_id")))
        response.mimetype = PROBLEM_JSON
    else:
        page = render_page("problem.html", {"dashboard": True, "principal": g.get("principal"),
                                            "problem": problem.to_dict(), "request_id": g.get("request_id"),
                                            "next_path": _next_path()})
        response = Response(page, mimetype="text/html")
    response.status_code = problem.status
    response.headers.update(problem.headers)
    return response


def _wants_json() -> bool:
    if request.path.endswith((".json", ".csv")):
        return True
    return request.accept_mimetypes.best_match(["text/html", PROBLEM_JSON, "application/json"]) != "text/html"


def _next_path() -> str:
    """Where signing in from this error page leads: back to the page asked for."""
    if request.method == "GET" and not request.path.startswith("/sign-in"):
        return local_path(request.full_path.rstrip("?"), "/")
    return "/"
