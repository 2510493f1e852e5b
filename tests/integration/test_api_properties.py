"""Property-based: every operation of every service's own OpenAPI, fed what
schemathesis (on hypothesis) makes of it, valid and invalid, never answers
5xx, and every answer conforms to the OpenAPI (status, content type, body and
headers). The OpenAPI is the truth: a finding is fixed in the code or in the
schema that generates it, never by loosening a check here.

Bounded to stay about a minute a backend on two cores: a fixed seed, few
examples per operation. Each run uses a fresh, seeded database and a token of
Alice (Owner of acme) with the admin and service roles, so requests get past
authentication; checkout talks to a real localstripe (card set-up, purchases).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis import BaseSchema, Case, CheckContext, Response

from services.common.clock import FixedClock
from services.common.problems import PROBLEM_JSON
from tests.conftest import NOW, make_settings
from tests.support import token

MAX_EXAMPLES = 20

CONFIG = schemathesis.Config.from_dict({
    "seed": 20261121,
    # Given to the operations that declare bearerAuth, so the negative cases that
    # leave it out (or spoil it) are sent as generated.
    "auth": {"openapi": {"bearerAuth": {"bearer": token(1, roles=("admin", "service"))}}},
    # Text may never hold NUL (the request guard refuses it anywhere in a body, with
    # `invalid_text`; tests/integration/test_bad_input.py), which JSON Schema can not
    # say of a free-form object such as an event's payload.
    "generation": {"allow-x00": False},
    "checks": {
        # A schema-valid request may still break a business rule: a 422 with the rule's
        # code (seats below the minimum, an unknown trial kind). That the schema's own
        # validation agrees with the OpenAPI is checked below instead.
        "positive_data_acceptance": {"expected-statuses": ["2xx", "3xx", 401, 403, 404, 409, 422, 429]},
    },
    "operations": [
        # No generated body carries a valid HMAC of itself: every one is a 400.
        {"include-path": "/stripe/webhooks", "checks": {"positive_data_acceptance": {"enabled": False}}},
    ],
})

# What a request the OpenAPI allows must never be answered with.
REFUSED_AS_MALFORMED = {"validation_failed", "malformed_json", "unsupported_media_type", "bad_request",
                        "invalid_text", "json_too_deep", "number_too_large"}


@schemathesis.check
def schema_valid_requests_pass_validation(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """A request generated from the OpenAPI passes the API's own request validation:
    the OpenAPI says exactly what the marshmallow schemas accept."""
    if case.meta is None or not case.meta.generation.mode.is_positive or response.status_code not in (
            400, 415, 422):
        return None
    body = response.json()
    assert body.get("code") not in REFUSED_AS_MALFORMED, f"A request the OpenAPI allows was refused: {body}"
    return None


class CurrentApp:
    """The WSGI application the schemas send to: the one the running test built
    (each test gets its own database)."""

    app: Flask | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        assert self.app is not None
        return self.app(environ, start_response)


CURRENT = CurrentApp()


def openapi(service: str) -> dict[str, Any]:
    """The service's /openapi.json, as its app serves it (no database needed)."""
    app = importlib.import_module(f"services.{service}.app").create_app(
        make_settings(service, "sqlite://"), FixedClock(NOW))
    try:
        return app.test_client().get("/openapi.json").json  # type: ignore[no-any-return]
    finally:
        app.extensions["service_context"].close()


SPECS = {service: openapi(service) for service in ("checkout", "trials", "notifications")}


def schema(service: str) -> BaseSchema:
    loaded = schemathesis.openapi.from_dict(SPECS[service], config=CONFIG)
    loaded.app = CURRENT
    return loaded


checkout, trials, notifications = schema("checkout"), schema("trials"), schema("notifications")
BOUNDED = settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                          HealthCheck.filter_too_much])


@pytest.fixture
def notifications_app(fresh_db: Callable[[str], str], clock: FixedClock) -> Iterator[Flask]:
    flask_app = importlib.import_module("services.notifications.app").create_app(
        make_settings("notifications", fresh_db("notifications")), clock)
    yield flask_app
    flask_app.extensions["service_context"].close()


def call_and_check(case: Case, app: Flask) -> None:
    CURRENT.app = app
    case.call_and_validate()


@checkout.parametrize()
@BOUNDED
def test_checkout_api(case: Case, stripe_app: Flask) -> None:
    call_and_check(case, stripe_app)


@trials.parametrize()
@BOUNDED
def test_trials_api(case: Case, trials_app: Flask) -> None:
    call_and_check(case, trials_app)


@notifications.parametrize()
@BOUNDED
def test_notifications_api(case: Case, notifications_app: Flask) -> None:
    call_and_check(case, notifications_app)


@pytest.mark.parametrize("service", sorted(SPECS))
def test_error_responses_are_documented_as_problem_json(service: str) -> None:
    spec = SPECS[service]
    responses = [("components", name, r) for name, r in spec["components"]["responses"].items()]
    responses += [(f"{method.upper()} {path}", status, r) for path, item in spec["paths"].items()
                  for method, operation in item.items() if method != "parameters"
                  for status, r in operation["responses"].items()]
    problems = 0
    for where, status, response in responses:
        for media_type, content in response.get("content", {}).items():
            if content.get("schema") == {"$ref": "#/components/schemas/Problem"}:
                problems += 1
                assert media_type == PROBLEM_JSON, (where, status)
        if status == "default" or (status.isdigit() and int(status) >= 400):
            assert "$ref" in response or set(response.get("content", {})) == {PROBLEM_JSON}, (where, status)
    assert problems >= 2  # the default error and 422 at least
