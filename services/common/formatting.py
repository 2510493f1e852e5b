"""Money and dates as people read them, the same in the pages and in mails.

Amounts are integer cents: 174000 -> "$1,740.00", -1000 -> "-$10.00", and a
currency without a symbol (data/formatting.toml) as "1,740.00 CHF". Dates are
the UTC day in words: "November 21, 2026".
"""

from __future__ import annotations

import tomllib
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path

FORMATTING_FILE = Path(__file__).resolve().parent / "data" / "formatting.toml"


@cache
def currency_symbols() -> dict[str, str]:
    with FORMATTING_FILE.open("rb") as fh:
        return dict(tomllib.load(fh)["currency_symbols"])


def money(cents: int, currency: str = "USD") -> str:
    """174000 -> "$1,740.00"; -1000 -> "-$10.00"; other currencies without a
    symbol as "1,740.00 CHF"."""
    if isinstance(cents, bool) or not isinstance(cents, int):
        raise TypeError(f"amounts are integer cents, got {cents!r}")
    sign = "-" if cents < 0 else ""
    units, rest = divmod(abs(cents), 100)
    number = f"{units:,}.{rest:02d}"
    code = (currency or "USD").upper()
    symbol = currency_symbols().get(code)
    return f"{sign}{symbol}{number}" if symbol else f"{sign}{number} {code}"


def utc_datetime(value: str | datetime) -> datetime:
    """An aware UTC datetime from ISO-8601 or a datetime; a naive one is taken as UTC."""
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def date_or_moment(value: str | date | datetime) -> date | datetime:
    """A day ("2026-11-21", a date) stays a day; a moment becomes a UTC datetime."""
    if isinstance(value, datetime):
        return utc_datetime(value)
    if isinstance(value, date):
        return value
    text = str(value)
    if len(text) == 10:
        return date.fromisoformat(text)
    return utc_datetime(text)


def long_date(value: str | date | datetime) -> str:
    """"November 21, 2026" (the UTC day)."""
    when = date_or_moment(value)
    day = when.date() if isinstance(when, datetime) else when
    return f"{day.strftime('%B')} {day.day}, {day.year}"
