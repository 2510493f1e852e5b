"""What a reminder says when it goes out late, or that it does not go out
(services/notifications/domain/schedule.py, `as_sent`): a reminder is due from
its day until the next reminder's day; within that window it states the days
actually left, after it the next one speaks and this one is skipped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.notifications.domain import messages as M
from services.notifications.domain.rendering import render
from services.notifications.domain.samples import SAMPLES
from services.notifications.domain.schedule import Schedule, TooLate, as_sent

SCHEDULE = Schedule.load()
RENEWS = "2027-01-25"


def noon(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T12:00:00+00:00")


def reminder(days_before: int, next_days_before: int | None, **changes: Any) -> dict[str, Any]:
    """A renewal_reminder's context as scheduled from checkout's event."""
    payload = {**SAMPLES["renewal_reminder"][1], "renewal_date": RENEWS, "days_before": days_before, **changes}
    if next_days_before is not None:
        payload["next_days_before"] = next_days_before
    return M.renewal_upcoming(payload, noon("2026-10-27"), SCHEDULE).context


@pytest.mark.parametrize("sent_on,days_left,said", [
    ("2026-10-27", 90, "in 90 days"),   # on its day
    ("2026-11-21", 65, "in 65 days"),   # found late (bought 65 days before the end): the truth, not "90"
    ("2026-12-10", 46, "in 46 days"),   # the last day before the 45-day reminder is due
])
def test_a_late_renewal_reminder_states_the_days_actually_left(sent_on: str, days_left: int, said: str) -> None:
    context = as_sent("renewal_reminder", reminder(90, 45), noon(sent_on), SCHEDULE)
    assert not isinstance(context, TooLate) and context["days_left"] == days_left
    message = render("renewal_reminder", context)
    assert f"renews automatically on January 25, 2027 (2027-01-25), {said}." in message.text
    assert said in message.html


def test_a_renewal_reminder_still_unsent_when_the_next_is_due_is_skipped() -> None:
    late = as_sent("renewal_reminder", reminder(90, 45), noon("2026-12-12"), SCHEDULE)  # 44 days left
    assert late == TooLate("late: the renewal is 44 days away and the 45-day reminder is due")
    notice = reminder(15, 0, auto_renew=True)
    assert as_sent("auto_renewal_notice", notice, noon("2027-01-24"), SCHEDULE)["days_left"] == 1
    assert as_sent("auto_renewal_notice", notice, noon("2027-01-25"), SCHEDULE) == TooLate(
        "late: the renewal date has come")


def test_an_event_from_before_the_rule_is_only_skipped_from_the_renewal_date() -> None:
    context = reminder(90, None)
    assert context["next_days_before"] == 0
    assert as_sent("renewal_reminder", context, noon("2026-12-30"), SCHEDULE)["days_left"] == 26
    assert isinstance(as_sent("renewal_reminder", context, noon(RENEWS), SCHEDULE), TooLate)


def test_a_late_trial_reminder_states_the_days_left_until_the_next_is_due() -> None:
    ends_at = datetime(2026, 12, 21, 12, 0, tzinfo=UTC)
    trial = {**SAMPLES["trial_started"][1], "ends_at": ends_at.isoformat()}
    seven, one = M.trial_endings("trial.started", trial, ends_at - timedelta(days=30), SCHEDULE)

    def sent(plan: M.Planned, at: datetime) -> str | TooLate:
        context = as_sent("trial_ending", plan.context, at, SCHEDULE)
        return context if isinstance(context, TooLate) else render("trial_ending", context).subject

    assert sent(seven, seven.send_after) == "Your Ultimate trial for acme ends in 7 days"
    assert sent(seven, seven.send_after + timedelta(days=2, hours=12)) == "Your Ultimate trial for acme ends in 4 days"
    assert sent(seven, one.send_after) == TooLate("late: the 1-day reminder is due")
    assert sent(one, one.send_after) == "Your Ultimate trial for acme ends in 1 day"
    assert sent(one, ends_at - timedelta(hours=1)) == "Your Ultimate trial for acme ends today"
    assert sent(one, ends_at) == TooLate("late: the trial has ended")


def test_messages_that_are_not_about_time_left_go_as_they_are() -> None:
    receipt = M.receipt(SAMPLES["receipt"][1], noon("2026-11-21")).context
    assert as_sent("receipt", receipt, noon("2030-01-01"), SCHEDULE) == receipt
