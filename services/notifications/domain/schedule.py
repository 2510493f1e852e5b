"""When each notification goes out, what it is keyed on, what a reminder sent
late says (or that it is not sent at all), and how delivery retries. Plain
Python over data from `data/schedule.toml`."""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

SCHEDULE_FILE = Path(__file__).resolve().parents[1] / "data" / "schedule.toml"


@dataclass(frozen=True)
class Schedule:
    ending_reminder_days: tuple[int, ...] = (7, 1)
    auto_renewal_notice_days: int = 15
    retry_backoff_seconds: tuple[int, ...] = (60, 300, 1800, 7200)
    max_attempts: int = 5
    lease_seconds: int = 300

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Schedule:
        delivery = data.get("delivery", {})
        schedule = cls(
            ending_reminder_days=tuple(int(d) for d in data.get("ending_reminder_days", (7, 1))),
            auto_renewal_notice_days=int(data.get("auto_renewal_notice_days", 15)),
            retry_backoff_seconds=tuple(int(s) for s in delivery.get("retry_backoff_seconds",
                                                                    (60, 300, 1800, 7200))),
            max_attempts=int(delivery.get("max_attempts", 5)),
            lease_seconds=int(delivery.get("lease_seconds", 300)),
        )
        if any(d <= 0 for d in schedule.ending_reminder_days):
            raise ValueError("ending_reminder_days must be positive")
        if not schedule.retry_backoff_seconds or any(s < 0 for s in schedule.retry_backoff_seconds):
            raise ValueError("retry_backoff_seconds needs at least one non-negative value")
        if schedule.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        return schedule

    @classmethod
    def load(cls, path: Path = SCHEDULE_FILE) -> Schedule:
        with path.open("rb") as fh:
            return cls.from_dict(tomllib.load(fh))

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.lease_seconds)

    def retry_delay(self, attempts: int) -> timedelta:
        """How long to wait after the `attempts`-th failed try (1 = the first)."""
        index = min(max(attempts, 1), len(self.retry_backoff_seconds)) - 1
        return timedelta(seconds=self.retry_backoff_seconds[index])

    def exhausted(self, attempts: int) -> bool:
        return attempts >= self.max_attempts

    def renewal_template(self, days_before: int, auto_renew: bool) -> str:
        return "auto_renewal_notice" if auto_renew and days_before == self.auto_renewal_notice_days \
            else "renewal_reminder"

    def trial_endings(self, ends_at: datetime, now: datetime) -> list[tuple[int, datetime]]:
        """(days before the end, when to send) for each reminder not already in the past."""
        return [(days, ends_at - timedelta(days=days)) for days in sorted(set(self.ending_reminder_days),
                                                                         reverse=True)
                if ends_at - timedelta(days=days) >= now]

    def next_trial_ending(self, days: int) -> int:
        """The days before the end of the trial reminder after the `days` one (0: none, the end)."""
        return max((d for d in self.ending_reminder_days if d < days), default=0)


# --- reminders sent late ---------------------------------------------------------------
RENEWAL_TEMPLATES = ("renewal_reminder", "auto_renewal_notice")


@dataclass(frozen=True)
class TooLate:
    """A reminder whose time has passed: the next reminder (or the event it
    announces) is due, so this one is not sent. `reason` is for support."""

    reason: str


def days_until(when: str | date | datetime, now: datetime) -> int:
    """Calendar days (UTC) from `now` to the day of `when`: what "in N days" means in a mail."""
    return (date.fromisoformat(day(when)) - now.astimezone(UTC).date()).days


def as_sent(template: str, context: dict[str, Any], now: datetime,
            schedule: Schedule) -> dict[str, Any] | TooLate:
    """The context a message is rendered from when it is sent at `now`.

    A reminder is due from its day until the next reminder's day (the last
    one: until the date it announces). Sent within that window, even late, it
    states the days actually left (`days_left`); once the window has passed
    the next reminder says it, and this one is `TooLate`. Other messages are
    not about time left and go as they are."""
    if template in RENEWAL_TEMPLATES:
        left = days_until(context["renewal_date"], now)
        next_days = int(context.get("next_days_before") or 0)
        if left <= next_days:
            return TooLate(f"late: the renewal is {left} days away and the {next_days}-day reminder is due"
                           if next_days else "late: the renewal date has come")
        return {**context, "days_left": left}
    if template == "trial_ending":
        ends_at = parse_datetime(context["ends_at"])
        next_days = schedule.next_trial_ending(int(context["days"]))
        if now >= ends_at - timedelta(days=next_days):
            return TooLate(f"late: the {next_days}-day reminder is due" if next_days
                           else "late: the trial has ended")
        return {**context, "days_left": days_until(ends_at, now)}
    return context


# --- dedupe keys: one per message that may ever be sent ------------------------------
def day(value: str | date | datetime) -> str:
    """The calendar day (UTC) of an ISO date or datetime, as YYYY-MM-DD."""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = str(value)
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        return parse_datetime(text).date().isoformat()


def parse_datetime(value: str | datetime) -> datetime:
    """An aware datetime from ISO-8601; a naive one is taken as UTC."""
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def receipt_key(order_id: object) -> str:
    return f"receipt/{order_id}"


def renewal_reminder_key(subscription_id: object, renewal_date: str, days_before: object) -> str:
    return f"renewal_reminder/{subscription_id}/{day(renewal_date)}/{days_before}"


def renewal_receipt_key(subscription_id: object, term_start: str) -> str:
    return f"renewal_receipt/{subscription_id}/{day(term_start)}"


def renewal_failed_key(subscription_id: object, renewal_date: str, attempt: object) -> str:
    return f"renewal_failed/{subscription_id}/{day(renewal_date)}/{attempt}"


def subscription_expired_key(subscription_id: object, term_end: str) -> str:
    return f"subscription_expired/{subscription_id}/{day(term_end)}"


def auto_renew_changed_key(subscription_id: object, changed_at: datetime, auto_renew: bool) -> str:
    return f"auto_renew_changed/{subscription_id}/{changed_at.isoformat()}/{'on' if auto_renew else 'off'}"


def refund_key(order_id: object, refunded_total: object) -> str:
    return f"refund/{order_id}/{refunded_total}"


def manager_invitation_key(invitation_id: object) -> str:
    return f"manager_invitation/{invitation_id}"


def card_expiring_key(billing_account_id: object, last4: object, exp_year: int, exp_month: int) -> str:
    return f"card_expiring/{billing_account_id}/{last4}/{int(exp_year):04d}-{int(exp_month):02d}"


def seat_key(template: str, ident: object, email: str, *parts: object) -> str:
    """The seat mails go to every Owner: one per Owner, per reconciliation (and
    attempt) or renewal or cut-back."""
    return "/".join([template, str(ident), *(str(p) for p in parts), email.lower()])


def trial_key(template: str, trial_id: object) -> str:
    """trial_started / trial_expired / trial_converted: once per trial."""
    return f"{template}/{trial_id}"


def trial_ending_prefix(trial_id: object) -> str:
    return f"trial_ending/{trial_id}/"


def trial_ending_key(trial_id: object, ends_at: datetime, days: int) -> str:
    return f"{trial_ending_prefix(trial_id)}{day(ends_at)}/{days}"


def ending_day_of(key: str) -> str:
    """The end date a trial_ending key was scheduled for."""
    return key.split("/")[2]


def message_id(dedupe_key: str, domain: str) -> str:
    """The same Message-ID whenever the same notification is sent, so a re-send
    after a crash is recognisably the same message."""
    digest = hashlib.sha256(dedupe_key.encode("utf-8")).hexdigest()[:40]
    return f"<{digest}@{domain}>"
