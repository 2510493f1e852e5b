from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from identity.auth import (
    Principal,
    TokenVerifier,
    bearer_token,
    generate_service_key,
    issue_service_token,
    issue_token,
    public_key_pem,
    service_token,
    verified_email_matches,
    verifier_for,
    verify_token,
)
from identity.errors import AuthError
from services.common import errors
from services.common.config import Settings
from services.common.problems import Problem, as_problem

NOW = datetime.now(UTC)
S = "a-test-secret-of-at-least-32-bytes-long"
OTHER = "another-secret-of-at-least-32-bytes-long"


def test_token_round_trip_keeps_user_email_and_roles() -> None:
    principal = verify_token(S, issue_token(S, 7, "a@b.c", ("admin",), now=NOW))
    assert (principal.user_id, principal.email, principal.is_admin) == (7, "a@b.c", True)


@pytest.mark.parametrize("token,code", [
    (issue_token(OTHER, 7, "a@b.c", now=NOW), "invalid_token"),
    (issue_token(S, 7, "a@b.c", now=NOW - timedelta(days=2), ttl=timedelta(days=1)), "token_expired"),
    (jwt.encode({"sub": "x", "exp": 9999999999, "iss": "devops-checkout"}, S), "invalid_token"),
    (jwt.encode({"sub": "1", "exp": 9999999999}, S), "invalid_token"),  # no issuer
    ("not-a-jwt", "invalid_token"),
])
def test_bad_tokens_are_refused_with_a_stable_code(token: str, code: str) -> None:
    with pytest.raises(AuthError) as excinfo:
        verify_token(S, token)
    assert excinfo.value.status == 401
    assert excinfo.value.code == code


@pytest.mark.parametrize("header,code", [(None, "unauthenticated"), ("Basic abc", "invalid_token"),
                                         ("Bearer ", "invalid_token")])
def test_authorization_header_shapes(header: str | None, code: str) -> None:
    with pytest.raises(AuthError) as excinfo:
        bearer_token(header)
    assert excinfo.value.code == code
    assert excinfo.value.headers["WWW-Authenticate"] == "Bearer"


def test_problem_serialises_as_rfc9457_with_extras() -> None:
    body = Problem(422, "seats_below_minimum", "Too few seats", "Need 3.", minimum_seats=3).to_dict("r1")
    assert body == {"type": "/problems/seats_below_minimum", "title": "Too few seats", "status": 422,
                    "code": "seats_below_minimum", "detail": "Need 3.", "instance": "r1",
                    "minimum_seats": 3}


@pytest.mark.parametrize("kind,status", [
    (errors.Malformed, 400), (errors.PaymentFailed, 402), (errors.Forbidden, 403), (errors.NotFound, 404),
    (errors.Conflict, 409), (errors.Invalid, 422), (errors.ProviderRefused, 502),
    (errors.Unavailable, 503),
])
def test_each_kind_of_domain_error_answers_with_its_status(kind: type[errors.DomainError],
                                                           status: int) -> None:
    """The domain names what went wrong; only the HTTP edge knows the status."""
    problem = as_problem(kind("code_x", "Title", "Detail.", order_id=4))
    assert problem.to_dict() == {"type": "/problems/code_x", "title": "Title", "status": status,
                                 "code": "code_x", "detail": "Detail.", "order_id": 4}
    assert problem.headers == {}


def test_a_domain_error_that_may_pass_later_says_when() -> None:
    problem = as_problem(errors.Unavailable("busy", "Busy", retry_after=10))
    assert (problem.status, problem.headers) == (503, {"Retry-After": "10"})


# --- the verified email claim (billing-manager invitations) -------------------------------------
@pytest.mark.parametrize("email,verified,invited,matches", [
    ("ana@acme.test", True, "ana@acme.test", True),
    ("Ana@ACME.test", True, " ana@acme.test ", True),
    ("ana@acme.test", False, "ana@acme.test", False),  # the provider did not verify it
    ("ana@acme.test", True, "bob@acme.test", False),
    ("", True, "", False),
])
def test_an_invitation_needs_the_invited_address_verified(email: str, verified: bool, invited: str,
                                                           matches: bool) -> None:
    principal = Principal(7, email, email_verified=verified)
    assert verified_email_matches(principal, invited) is matches


# --- services' own tokens ------------------------------------------------------------------------
CHECKOUT_KEY, TRIALS_KEY = generate_service_key(), generate_service_key()


def service_verifier(service: str = "trials", *, production: bool = True) -> TokenVerifier:
    keys = json.dumps({"checkout": public_key_pem(CHECKOUT_KEY)})
    settings = Settings(service=service, database_url="sqlite://", service_public_keys=keys,
                        environment="production" if production else "test", auth_secret=S)
    return verifier_for(settings)


def test_a_service_token_is_for_one_callee_and_carries_only_the_service_role() -> None:
    token = issue_service_token(CHECKOUT_KEY, "checkout", "trials", now=datetime.now(UTC), roles=("admin", "demo"))
    principal = service_verifier("trials").verify(token)
    assert principal == Principal(0, "checkout@services.internal", frozenset({"service", "demo"}),
                                  service="checkout")
    assert not principal.is_admin  # a service's key never makes an admin, whatever it claims
    with pytest.raises(AuthError) as other_callee:
        service_verifier("notifications").verify(token)
    assert other_callee.value.code == "invalid_token"


@pytest.mark.parametrize("token,code", [
    (issue_service_token(TRIALS_KEY, "trials", "trials", now=NOW), "invalid_token"),  # a key we do not trust
    (issue_service_token(TRIALS_KEY, "checkout", "trials", now=NOW), "invalid_token"),  # passing as checkout
    (issue_service_token(CHECKOUT_KEY, "checkout", "trials", now=NOW - timedelta(minutes=10)), "token_expired"),
    (issue_token(S, 0, "relay@x", ("service", "admin"), now=NOW), "invalid_token"),  # HS256 in production
])
def test_bad_service_tokens_are_refused(token: str, code: str) -> None:
    with pytest.raises(AuthError) as excinfo:
        service_verifier().verify(token)
    assert (excinfo.value.status, excinfo.value.code) == (401, code)


def test_a_service_signs_with_its_own_key_and_development_falls_back_to_hs256() -> None:
    signed = Settings(service="checkout", database_url="sqlite://", service_key=CHECKOUT_KEY)
    assert service_verifier("trials").verify(service_token(signed, "trials")).roles == {"service"}
    development = Settings(service="checkout", database_url="sqlite://", auth_secret=S, environment="test")
    assert service_verifier("trials", production=False).verify(service_token(development, "trials")).user_id == 0
    production = development.with_overrides(environment="production")
    with pytest.raises(RuntimeError, match="SERVICE_KEY"):
        service_token(production, "trials")


def test_one_process_relaying_for_two_services_signs_as_each_with_its_own_key() -> None:
    """The worker relays for checkout and trials: <SERVICE>_SERVICE_KEY before SERVICE_KEY."""
    environ = {"CHECKOUT_SERVICE_KEY": CHECKOUT_KEY, "TRIALS_SERVICE_KEY": TRIALS_KEY, "SERVICE_KEY": "unused"}
    assert Settings.from_env("checkout", environ).service_key == CHECKOUT_KEY
    assert Settings.from_env("trials", environ).service_key == TRIALS_KEY
    assert Settings.from_env("notifications", environ).service_key == "unused"
    checkout = Settings.from_env("checkout", environ)
    assert service_verifier("trials").verify(service_token(checkout, "trials")).roles == {"service"}
