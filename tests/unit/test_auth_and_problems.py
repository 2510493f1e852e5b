from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from services.common import errors
from services.common.auth import bearer_token, issue_token, verify_token
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
    with pytest.raises(Problem) as excinfo:
        verify_token(S, token)
    assert excinfo.value.status == 401
    assert excinfo.value.code == code


@pytest.mark.parametrize("header,code", [(None, "unauthenticated"), ("Basic abc", "invalid_token"),
                                         ("Bearer ", "invalid_token")])
def test_authorization_header_shapes(header: str | None, code: str) -> None:
    with pytest.raises(Problem) as excinfo:
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
