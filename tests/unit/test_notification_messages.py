"""What each event means as mail (services/notifications/domain/messages.py):
which template, to whom, keyed how, with what context and when; and what an
event that can not make a correct mail is refused with (InvalidEvent, 422
`invalid_event`, the reason in `detail`) so the publisher's relay keeps it.
The samples are the events the previews use (domain/samples.py)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.common.errors import DomainError
from services.common.problems import status_of
from services.notifications.domain import messages as M
from services.notifications.domain.samples import SAMPLES, sample_context
from services.notifications.domain.schedule import Schedule

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
SCHEDULE = Schedule.load()


def payload(template: str, **changes: Any) -> dict[str, Any]:
    return {**copy.deepcopy(SAMPLES[template][1]), **changes}


def without(template: str, *names: str) -> dict[str, Any]:
    return {k: v for k, v in payload(template).items() if k not in names}


# --- one plan per event ----------------------------------------------------------------
def test_an_order_makes_a_receipt_to_the_buyer_now() -> None:
    plan = M.receipt(payload("receipt"), NOW)
    assert (plan.dedupe_key, plan.template, plan.recipient, plan.send_after) == (
        "receipt/42", "receipt", "billing@acme.test", NOW)
    assert plan.context["total"] == 174000 and plan.context["term_end"] == "2027-11-21"


def test_a_receipt_fills_in_what_the_publisher_may_leave_out() -> None:
    line = {"description": "Premium plan, 5 seats, 12 months", "quantity": 5, "amount": 174000}
    context = M.receipt(without("receipt", "subtotal", "discount_total", "card", "discount_code")
                        | {"lines": [line]}, NOW).context
    assert context["lines"] == [{**line, "unit_amount": 34800, "discount": 0, "net": 174000}]
    assert context["subtotal"] == 174000 and context["discount_total"] == 0
    assert context["card"] is None and context["discount_code"] is None and context["company"] == "Acme Corp"


def test_a_discounted_line_nets_its_discount_and_a_line_counts_one_by_default() -> None:
    [line] = M.receipt(payload("receipt", lines=[{"description": "Setup", "amount": 1000, "discount": 250}]),
                       NOW).context["lines"]
    assert (line["quantity"], line["unit_amount"], line["discount"], line["net"]) == (1, 1000, 250, 750)


def test_a_card_on_a_receipt_says_whether_it_has_expired_default_no() -> None:
    card = M.receipt(payload("receipt"), NOW).context["card"]
    assert card == {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2034, "expired": False,
                    "expires_before_renewal": False}


@pytest.mark.parametrize("days_before,template", [(30, "renewal_reminder"), (15, "auto_renewal_notice")])
def test_a_renewal_reminder_is_keyed_on_its_term_and_day(days_before: int, template: str) -> None:
    plan = M.renewal_upcoming(payload("auto_renewal_notice", days_before=days_before), NOW, SCHEDULE)
    assert (plan.template, plan.dedupe_key, plan.recipient) == (
        template, f"renewal_reminder/9/2027-11-21/{days_before}", "billing@acme.test")
    assert plan.context["days_left"] == 365 and plan.context["next_days_before"] == 0
    assert plan.context["quote"]["seats_owed"] == 2 and plan.context["quote"]["total"] == 1416000


def test_a_renewal_that_will_not_be_charged_needs_no_quote() -> None:
    plan = M.renewal_upcoming(payload("renewal_reminder", auto_renew=0, days_before=15, quote=None), NOW,
                              SCHEDULE)
    assert plan.template == "renewal_reminder" and plan.context["auto_renew"] is False
    assert plan.context["quote"] is None


def test_the_auto_renewal_notice_without_the_quote_is_refused() -> None:
    with pytest.raises(M.InvalidEvent, match="the auto-renewal notice needs the quote"):
        M.renewal_upcoming(payload("auto_renewal_notice", quote=None), NOW, SCHEDULE)


def test_a_quote_missing_its_total_is_refused() -> None:
    quote = {k: v for k, v in SAMPLES["auto_renewal_notice"][1]["quote"].items() if k != "total"}
    with pytest.raises(M.InvalidEvent, match="quote needs lines, seats, total and currency"):
        M.renewal_upcoming(payload("auto_renewal_notice", quote=quote), NOW, SCHEDULE)


def test_a_renewal_receipt_is_keyed_on_the_new_term_and_lists_its_changes_as_text() -> None:
    plan = M.renewal_receipt(payload("renewal_receipt", changes=["Seats rose.", 3]), NOW)
    assert (plan.template, plan.dedupe_key) == ("renewal_receipt", "renewal_receipt/9/2027-11-21")
    assert plan.context["changes"] == ["Seats rose.", "3"]
    assert M.renewal_receipt(without("renewal_receipt", "changes"), NOW).context["changes"] == []


def test_each_failed_renewal_charge_is_a_mail_of_its_own() -> None:
    first = M.renewal_failed(payload("renewal_failed"), NOW)
    last = M.renewal_failed(payload("renewal_failed", attempt=4, final=1, next_attempt_at=None), NOW)
    assert (first.dedupe_key, last.dedupe_key) == ("renewal_failed/9/2027-11-21/1", "renewal_failed/9/2027-11-21/4")
    assert first.context["final"] is False and last.context["final"] is True


def test_an_expiry_mail_is_keyed_on_the_term_that_ended() -> None:
    plan = M.subscription_expired(payload("subscription_expired"), NOW)
    assert (plan.template, plan.dedupe_key, plan.context["plan"]) == (
        "subscription_expired", "subscription_expired/9/2027-11-21", "ultimate")


def test_a_card_expiring_mail_is_keyed_on_the_card_and_its_month() -> None:
    plan = M.card_expiring(payload("card_expiring", exp_month=3), NOW)
    assert (plan.template, plan.dedupe_key) == ("card_expiring", "card_expiring/3/4242/2026-03")
    assert plan.context["card"] == {"brand": "visa", "last4": "4242", "exp_month": 3, "exp_year": 2026,
                                    "expired": False, "expires_before_renewal": False}


@pytest.mark.parametrize("template,topic", [
    ("trial_started", "trial.started"), ("trial_expired", "trial.expired"), ("trial_converted", "trial.converted")])
def test_trial_mails_go_once_per_trial_now(template: str, topic: str) -> None:
    plan = M.trial_once(template, topic, payload(template), NOW)
    assert (plan.template, plan.dedupe_key, plan.recipient, plan.send_after) == (
        template, f"{template}/7", "owner@acme.test", NOW)


def test_a_trial_start_plans_a_reminder_per_configured_day_before_its_end() -> None:
    ends = datetime(2026, 12, 21, 12, 0, tzinfo=UTC)
    plans = M.trial_endings("trial.started", payload("trial_started"), ends - timedelta(days=30), SCHEDULE)
    assert [(p.dedupe_key, p.send_after, p.context["days"]) for p in plans] == [
        ("trial_ending/7/2026-12-21/7", ends - timedelta(days=7), 7),
        ("trial_ending/7/2026-12-21/1", ends - timedelta(days=1), 1)]
    assert {p.template for p in plans} == {"trial_ending"}
    assert [p.dedupe_key for p in M.trial_endings("trial.started", payload("trial_started"),
                                                  ends - timedelta(days=2), SCHEDULE)] == [
        "trial_ending/7/2026-12-21/1"]


def test_a_trial_end_is_kept_as_a_utc_moment() -> None:
    context = M.trial_context("trial.started", payload("trial_started", ends_at="2026-12-21T07:00:00-05:00"))
    assert context["ends_at"] == "2026-12-21T12:00:00+00:00"
    assert M.trial_context("trial.started", payload("trial_started", ends_at="2026-12-21T12:00:00"))[
        "ends_at"] == "2026-12-21T12:00:00+00:00"


# --- refusals --------------------------------------------------------------------------
Plan = Callable[[dict[str, Any]], Any]
RECEIPT: Plan = lambda p: M.receipt(p, NOW)  # noqa: E731
RENEWAL: Plan = lambda p: M.renewal_upcoming(p, NOW, SCHEDULE)  # noqa: E731
FAILED: Plan = lambda p: M.renewal_failed(p, NOW)  # noqa: E731
CARD: Plan = lambda p: M.card_expiring(p, NOW)  # noqa: E731
TRIAL: Plan = lambda p: M.trial_once("trial_started", "trial.started", p, NOW)  # noqa: E731


@pytest.mark.parametrize("plan,event,detail", [
    (RECEIPT, without("receipt", "email"), "order.completed: missing email"),
    (RECEIPT, without("receipt", "total", "email"), "order.completed: missing email, total"),
    (RECEIPT, payload("receipt", currency=None), "order.completed: missing currency"),
    (RENEWAL, without("renewal_reminder", "renewal_date"), "subscription.renewal_upcoming: missing renewal_date"),
    (CARD, without("card_expiring", "last4"), "card.expiring: missing last4"),
    (TRIAL, without("trial_started", "ends_at"), "trial.started: missing ends_at"),
    # amounts are integer cents and counts integers
    (RECEIPT, payload("receipt", total=1740.0), "order.completed: total must be an integer, got 1740.0"),
    (RECEIPT, payload("receipt", seats="5"), "order.completed: seats must be an integer, got '5'"),
    (RECEIPT, payload("receipt", total=True), "order.completed: total must be an integer, got True"),
    (RECEIPT, payload("receipt", lines=[{"description": "Premium", "amount": 99.5}]),
     "order.completed: amount must be an integer, got 99.5"),
    (FAILED, payload("renewal_failed", attempt="2"), "subscription.renewal_failed: attempt must be an integer"),
    (CARD, payload("card_expiring", exp_month="12"), "card.expiring: exp_month must be an integer"),
    # days that exist
    (RECEIPT, payload("receipt", term_end="2027-02-30"), "order.completed: term_end is not an ISO-8601 date"),
    (RENEWAL, payload("renewal_reminder", renewal_date="next year"),
     "subscription.renewal_upcoming: renewal_date is not an ISO-8601 date"),
    (FAILED, payload("renewal_failed", next_attempt_at="2027-13-01T00:00:00"),
     "subscription.renewal_failed: next_attempt_at is not an ISO-8601 date"),
    (TRIAL, payload("trial_started", ends_at="soon"), "trial.started: ends_at is not an ISO-8601 datetime"),
    # lines, cards and addresses a template can show
    (RECEIPT, payload("receipt", lines="Premium"), "order.completed: lines must be a list"),
    (RECEIPT, payload("receipt", lines=[{"amount": 100}]),
     "order.completed: each line needs a description and an amount"),
    (RECEIPT, payload("receipt", card={"brand": "visa", "exp_month": 1, "exp_year": 2030}),
     "order.completed: card needs brand, last4, exp_month and exp_year"),
    (RECEIPT, payload("receipt", email="billing.acme.test"), "order.completed: not an email address"),
    # one address, nothing that would add a header or a second recipient
    (RECEIPT, payload("receipt", email="a@acme.test,b@evil.test"), "order.completed: not an email address"),
    (RECEIPT, payload("receipt", email="a@acme.test\nbcc@evil.test"), "order.completed: not an email address"),
    (RECEIPT, payload("receipt", email="a@acme.test\rb@evil.test"), "order.completed: not an email address"),
    (RECEIPT, payload("receipt", email="<a@acme.test>"), "order.completed: not an email address"),
    (RECEIPT, payload("receipt", email="a@acme.test b@evil.test"), "order.completed: not an email address"),
])
def test_an_event_that_can_not_make_a_correct_mail_is_refused_with_the_reason(
        plan: Plan, event: dict[str, Any], detail: str) -> None:
    with pytest.raises(M.InvalidEvent) as refused:
        plan(event)
    assert (status_of(refused.value), refused.value.code) == (422, "invalid_event")
    assert str(refused.value).startswith(detail), str(refused.value)


def test_unknown_extra_fields_are_fine() -> None:
    plan = M.receipt(payload("receipt", shiny_new_field={"x": 1}), NOW)
    assert plan.dedupe_key == "receipt/42" and "shiny_new_field" not in plan.context


def test_an_address_is_trimmed() -> None:
    assert M.receipt(payload("receipt", email="  billing@acme.test \n"), NOW).recipient == "billing@acme.test"


# --- previews go through the same rules ------------------------------------------------
def test_a_preview_is_what_the_sample_event_plans() -> None:
    assert sample_context("receipt") == M.receipt(payload("receipt"), datetime(2026, 11, 21, tzinfo=UTC)).context
    notice = sample_context("auto_renewal_notice", {"total": "99900", "last4": "1111", "seats_owed": "3"})
    assert notice["quote"]["total"] == 99900 and notice["quote"]["seats_owed"] == 3
    assert notice["card"]["last4"] == "1111"
    assert sample_context("renewal_reminder")["days_left"] == 30  # shown as sent on its day


def test_a_preview_override_that_does_not_apply_is_refused() -> None:
    with pytest.raises(DomainError) as refused:
        sample_context("receipt", {"colour": "red", "total": "a lot", "term_end": "2027-02-30"})
    assert status_of(refused.value) == 422
    assert sorted(refused.value.extra["errors"]["query"]) == ["colour", "term_end", "total"]
