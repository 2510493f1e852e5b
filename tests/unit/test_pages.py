"""The pages' small rules: where sign-in may redirect, the CSRF token, formatting."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.common.pages import local_path, long_date, money
from services.common.sessions import csrf_token

S = "a-test-secret-of-at-least-32-bytes-long"


@pytest.mark.parametrize("target,expected", [
    ("/checkout?namespace_id=100", "/checkout?namespace_id=100"),
    ("/trials", "/trials"),
    (None, "/home"), ("", "/home"), ("checkout", "/home"),
    ("https://evil.example/x", "/home"), ("//evil.example/x", "/home"), ("/\\evil.example", "/home"),
    ("javascript:alert(1)", "/home"), ("/checkout\r\nSet-Cookie: x=1", "/home"),
])
def test_sign_in_redirects_only_to_a_path_on_this_site(target: str | None, expected: str) -> None:
    assert local_path(target, "/home") == expected


def test_the_csrf_token_is_bound_to_the_session_and_the_secret() -> None:
    token = csrf_token(S, "session-a")
    assert token == csrf_token(S, "session-a") and len(token) == 64
    assert token != csrf_token(S, "session-b")
    assert token != csrf_token(S + "x", "session-a")


def test_money_and_dates_read_like_the_pages_javascript_writes_them() -> None:
    assert (money(174000), money(-24000), money(5, "chf")) == ("$1,740.00", "-$240.00", "0.05 CHF")
    assert long_date("2027-11-21") == "November 21, 2027"
    assert long_date(datetime(2027, 1, 20, 12, tzinfo=UTC)) == "January 20, 2027"
    assert long_date("2027-01-20T12:00:00+00:00") == "January 20, 2027"
