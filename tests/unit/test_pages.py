"""The pages' small rules: where sign-in may redirect, the CSRF token, formatting
(services/common/formatting.py, shared with the notifications' mails)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from identity.sessions import csrf_token
from identity.signin import local_path
from services.common.formatting import long_date, money

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
    assert long_date(date(2027, 1, 20)) == "January 20, 2027"


def test_dates_are_the_utc_day() -> None:
    new_york = timezone(timedelta(hours=-5))
    assert long_date(datetime(2027, 1, 20, 21, 30, tzinfo=new_york)) == "January 21, 2027"
    assert long_date("2027-01-20T21:30:00-05:00") == "January 21, 2027"
    assert long_date("2027-01-21T01:30:00+05:00") == "January 20, 2027"
    assert long_date("2027-01-20T23:30:00") == "January 20, 2027"  # naive: taken as UTC


def test_money_is_integer_cents_and_the_symbols_are_data() -> None:
    assert (money(1), money(100_000_000, "EUR"), money(99, "gbp"), money(0)) == (
        "$0.01", "€1,000,000.00", "£0.99", "$0.00")
    with pytest.raises(TypeError):
        money(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        money(True)


def test_pages_and_mails_share_one_formatting() -> None:
    from services.common import formatting
    from services.notifications.domain import rendering

    assert rendering.FILTERS["money"] is formatting.money
    assert rendering.FILTERS["long_date"] is formatting.long_date
    assert "currency_symbols" not in rendering._messages()
