"""When notifications go out and what each is keyed on
(services/notifications/domain/schedule.py over data/schedule.toml): the values
come from the data file, reminders are planned only ahead of now, the 15-day
auto-renewal reminder is the itemised notice, failed deliveries back off, and
every message that may ever be sent has one dedupe key (so a redelivered event
or a second sweep never mails twice). What a late reminder says is in
test_late_reminders.py."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from services.notifications.domain import schedule as S
from services.notifications.domain.schedule import Schedule, TooLate, as_sent

ENDS = datetime(2026, 12, 21, 12, 0, tzinfo=UTC)


# --- the values are data ---------------------------------------------------------------
def test_the_schedule_is_read_from_its_data_file(tmp_path: Path) -> None:
    shipped = Schedule.load()
    assert shipped.ending_reminder_days == (7, 1) and shipped.auto_renewal_notice_days == 15
    assert shipped.retry_backoff_seconds == (60, 300, 1800, 7200) and shipped.max_attempts == 5
    assert shipped.lease == timedelta(minutes=5)

    other = tmp_path / "schedule.toml"
    other.write_text("ending_reminder_days = [3]\nauto_renewal_notice_days = 10\n"
                     "[delivery]\nretry_backoff_seconds = [5]\nmax_attempts = 2\n")
    changed = Schedule.load(other)
    assert (changed.ending_reminder_days, changed.auto_renewal_notice_days) == ((3,), 10)
    assert (changed.retry_backoff_seconds, changed.max_attempts) == ((5,), 2)
    assert changed.lease_seconds == 300  # not in the file: the default


@pytest.mark.parametrize("data,problem", [
    ({"ending_reminder_days": [7, 0]}, "ending_reminder_days must be positive"),
    ({"delivery": {"retry_backoff_seconds": []}}, "retry_backoff_seconds needs at least one"),
    ({"delivery": {"retry_backoff_seconds": [60, -1]}}, "retry_backoff_seconds needs at least one"),
    ({"delivery": {"max_attempts": 0}}, "max_attempts must be at least 1"),
])
def test_a_schedule_that_could_not_work_is_refused_at_load(data: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Schedule.from_dict(data)


# --- delivery retries ------------------------------------------------------------------
@pytest.mark.parametrize("attempts,wait", [(0, 60), (1, 60), (2, 300), (3, 1800), (4, 7200), (9, 7200)])
def test_each_failed_try_waits_longer_and_the_last_wait_repeats(attempts: int, wait: int) -> None:
    assert Schedule.load().retry_delay(attempts) == timedelta(seconds=wait)


def test_a_notification_is_given_up_after_max_attempts() -> None:
    schedule = Schedule.load()
    assert [schedule.exhausted(n) for n in (1, 4, 5, 6)] == [False, False, True, True]


# --- renewal reminders -----------------------------------------------------------------
@pytest.mark.parametrize("days_before,auto_renew,template", [
    (15, True, "auto_renewal_notice"),   # what will be charged, itemised
    (15, False, "renewal_reminder"),     # nothing will be charged: the plain "ends on" reminder
    (30, True, "renewal_reminder"),
    (90, True, "renewal_reminder"),
])
def test_the_auto_renewal_notice_is_the_reminder_on_its_day_before_a_charge(
        days_before: int, auto_renew: bool, template: str) -> None:
    assert Schedule.load().renewal_template(days_before, auto_renew) == template


def test_a_renewal_reminder_is_skipped_from_the_day_the_next_one_is_due() -> None:
    context = {"renewal_date": "2027-01-25", "next_days_before": 45}
    at = datetime(2026, 12, 11, 0, 0, tzinfo=UTC)  # 45 days before: the 45-day reminder's day
    assert as_sent("renewal_reminder", context, at, Schedule.load()) == TooLate(
        "late: the renewal is 45 days away and the 45-day reminder is due")
    assert as_sent("renewal_reminder", context, at - timedelta(seconds=1), Schedule.load())["days_left"] == 46


# --- trial-ending reminders ------------------------------------------------------------
def test_trial_reminders_go_the_configured_days_before_the_end_latest_first() -> None:
    assert Schedule.load().trial_endings(ENDS, ENDS - timedelta(days=30)) == [
        (7, ENDS - timedelta(days=7)), (1, ENDS - timedelta(days=1))]
    # the same day listed twice, or out of order, is still one reminder per day
    assert Schedule(ending_reminder_days=(1, 7, 7)).trial_endings(ENDS, ENDS - timedelta(days=30)) == [
        (7, ENDS - timedelta(days=7)), (1, ENDS - timedelta(days=1))]


def test_trial_reminders_already_in_the_past_are_not_planned() -> None:
    schedule = Schedule.load()
    assert schedule.trial_endings(ENDS, ENDS - timedelta(days=3)) == [(1, ENDS - timedelta(days=1))]
    assert schedule.trial_endings(ENDS, ENDS - timedelta(days=7)) == [  # due right now: still planned
        (7, ENDS - timedelta(days=7)), (1, ENDS - timedelta(days=1))]
    assert schedule.trial_endings(ENDS, ENDS - timedelta(hours=1)) == []


def test_the_reminder_after_each_trial_reminder_is_the_next_smaller_day() -> None:
    schedule = Schedule(ending_reminder_days=(14, 7, 1))
    assert [schedule.next_trial_ending(d) for d in (14, 7, 3, 1)] == [7, 1, 1, 0]


# --- days and moments ------------------------------------------------------------------
@pytest.mark.parametrize("value,expected", [
    ("2027-11-21", "2027-11-21"),
    ("2027-11-21T00:00:00+00:00", "2027-11-21"),
    ("2026-12-21T23:30:00-05:00", "2026-12-22"),  # the UTC day, wherever the publisher is
    ("2026-12-21T23:30:00", "2026-12-21"),        # naive: taken as UTC
    (date(2027, 11, 21), "2027-11-21"),
    (datetime(2027, 11, 21, 23, 59, tzinfo=UTC), "2027-11-21"),
])
def test_a_day_is_the_utc_calendar_day(value: str | date | datetime, expected: str) -> None:
    assert S.day(value) == expected


def test_a_naive_moment_is_utc_and_an_offset_one_is_converted() -> None:
    assert S.parse_datetime("2026-12-21T12:00:00") == ENDS
    assert S.parse_datetime("2026-12-21T07:00:00-05:00") == ENDS
    assert S.parse_datetime("2026-12-21T07:00:00-05:00").tzinfo == UTC


def test_days_until_counts_calendar_days_in_utc() -> None:
    late_evening = datetime(2026, 11, 20, 23, 59, tzinfo=UTC)
    assert S.days_until("2026-11-21", late_evening) == 1       # tomorrow, a minute away
    assert S.days_until("2026-11-20", late_evening) == 0       # today
    new_york = timezone(timedelta(hours=-5))
    assert S.days_until("2026-11-21", datetime(2026, 11, 20, 20, 0, tzinfo=new_york)) == 0  # 01:00 UTC on the 21st


# --- dedupe keys -----------------------------------------------------------------------
def test_each_message_that_may_be_sent_has_its_own_key() -> None:
    assert S.receipt_key(42) == "receipt/42"
    assert S.renewal_reminder_key(9, "2027-11-21T00:00:00+00:00", 30) == "renewal_reminder/9/2027-11-21/30"
    assert S.renewal_receipt_key(9, "2027-11-21") == "renewal_receipt/9/2027-11-21"
    assert S.renewal_failed_key(9, "2027-11-21", 2) == "renewal_failed/9/2027-11-21/2"
    assert S.subscription_expired_key(9, "2027-11-21") == "subscription_expired/9/2027-11-21"
    assert S.card_expiring_key(3, "4242", 2026, 1) == "card_expiring/3/4242/2026-01"
    assert S.trial_key("trial_started", 7) == "trial_started/7"
    assert S.trial_ending_key(7, ENDS, 1) == "trial_ending/7/2026-12-21/1"


def test_keys_tell_apart_what_is_a_different_message_and_only_that() -> None:
    # each reminder of a term, each term, each charge attempt, each card: a mail of its own
    assert S.renewal_reminder_key(9, "2027-11-21", 30) != S.renewal_reminder_key(9, "2027-11-21", 15)
    assert S.renewal_reminder_key(9, "2027-11-21", 30) != S.renewal_reminder_key(9, "2028-11-21", 30)
    assert S.renewal_failed_key(9, "2027-11-21", 1) != S.renewal_failed_key(9, "2027-11-21", 2)
    assert S.card_expiring_key(3, "4242", 2026, 12) != S.card_expiring_key(3, "4444", 2026, 12)
    # the same facts written differently are the same mail
    assert S.renewal_reminder_key(9, "2027-11-21", 30) == S.renewal_reminder_key(
        9, "2027-11-21T00:00:00+00:00", 30)
    assert S.trial_ending_key(7, ENDS, 7) == S.trial_ending_key(
        7, datetime(2026, 12, 21, 7, 0, tzinfo=timezone(timedelta(hours=-5))), 7)


def test_a_trial_ending_key_names_its_trial_and_the_end_it_was_planned_for() -> None:
    key = S.trial_ending_key(7, ENDS, 7)
    assert key.startswith(S.trial_ending_prefix(7)) and not key.startswith(S.trial_ending_prefix(70))
    assert S.ending_day_of(key) == "2026-12-21"


def test_a_message_id_is_the_same_for_the_same_notification_and_only_for_it() -> None:
    first = S.message_id("receipt/42", "mail.example.test")
    assert re.fullmatch(r"<[0-9a-f]{40}@mail\.example\.test>", first)
    assert S.message_id("receipt/42", "mail.example.test") == first
    assert S.message_id("receipt/43", "mail.example.test") != first
