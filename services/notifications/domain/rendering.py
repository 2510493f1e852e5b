"""Rendering a notification: a template name and its context in, a subject, a
plain-text body and an HTML body out. Pure: no database, no clock, no network
(the templates and the words in data/messages.toml are read once).

Amounts are integer cents and are shown as "$1,740.00" (the currency symbols are
services/common/data/formatting.toml's); dates are shown in UTC
both as words ("November 21, 2026") and as ISO-8601; a card is "Visa ending
4242, expires 12/2034". HTML is autoescaped; subjects are one plain line.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from services.common.errors import NotFound
from services.common.formatting import date_or_moment, long_date, money

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES_DIR = ROOT / "templates"
MESSAGES_FILE = ROOT / "data" / "messages.toml"

TEMPLATES: tuple[str, ...] = (
    "receipt", "refund", "renewal_reminder", "auto_renewal_notice", "renewal_receipt", "renewal_failed",
    "subscription_expired", "auto_renew_changed", "manager_invitation", "card_expiring", "trial_started",
    "trial_ending", "trial_expired", "trial_converted", "overage_notice", "seats_reconciled",
    "reconciliation_failed", "seats_explained", "duo_seats_removed",
)
SUBJECT_MAX = 255


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    text: str
    html: str


class TemplateNotFound(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__("template_not_found", "Template not found",
                         f"No template {name!r}; choose one of: {', '.join(TEMPLATES)}.")


@cache
def _messages() -> dict[str, Any]:
    with MESSAGES_FILE.open("rb") as fh:
        return tomllib.load(fh)


# --- filters (money and long_date are services/common/formatting.py's, as the pages') ---
def iso(value: str | date | datetime) -> str:
    """"2026-11-21" for a date, "2026-11-21T12:00:00Z" for a moment (UTC)."""
    when = date_or_moment(value)
    if isinstance(when, datetime):
        return when.strftime("%Y-%m-%dT%H:%M:%SZ")
    return when.isoformat()


def when(value: str | date | datetime) -> str:
    """Both forms: "November 21, 2026 (2026-11-21)", or for a moment
    "December 21, 2026 at 12:00 UTC (2026-12-21T12:00:00Z)"."""
    moment = date_or_moment(value)
    if isinstance(moment, datetime):
        return f"{long_date(moment)} at {moment.strftime('%H:%M')} UTC ({iso(moment)})"
    return f"{long_date(moment)} ({iso(moment)})"


def brand(value: str) -> str:
    return str(_messages()["card_brands"].get(str(value).lower(), str(value).title()))


def card_expiry(card: dict[str, Any]) -> str:
    return f"{int(card['exp_month']):02d}/{int(card['exp_year'])}"


def card(card: dict[str, Any]) -> str:
    """"Visa ending 4242, expires 12/2034"."""
    return f"{brand(card['brand'])} ending {card['last4']}, expires {card_expiry(card)}"


def product(value: str) -> str:
    return str(_messages()["product_names"].get(str(value), str(value).replace("_", " ").title()))


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def in_days(count: int) -> str:
    """"in 65 days", "in 1 day", or "today"."""
    return "today" if count == 0 else f"in {plural(count, 'day')}"


FILTERS = {"money": money, "long_date": long_date, "iso": iso, "when": when, "brand": brand,
           "card": card, "card_expiry": card_expiry, "product": product, "plural": plural,
           "in_days": in_days}


@cache
def _environments() -> tuple[Environment, Environment]:
    bodies = Environment(loader=FileSystemLoader(TEMPLATES_DIR), undefined=StrictUndefined,
                         autoescape=select_autoescape(["html"], default_for_string=False, default=False),
                         trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    subjects = Environment(undefined=StrictUndefined, autoescape=False)
    for env in (bodies, subjects):
        env.filters.update(FILTERS)
    return bodies, subjects


def render(template: str, context: dict[str, Any]) -> RenderedMessage:
    """The message `template` makes of `context`; TemplateNotFound for an unknown name."""
    if template not in TEMPLATES:
        raise TemplateNotFound(template)
    bodies, subjects = _environments()
    subject = subjects.from_string(_messages()["subjects"][template]).render(context)
    return RenderedMessage(
        subject=" ".join(subject.split())[:SUBJECT_MAX],
        text=bodies.get_template(f"{template}.txt").render(context),
        html=bodies.get_template(f"{template}.html").render(context),
    )
