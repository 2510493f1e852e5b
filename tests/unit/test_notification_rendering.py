"""How a notification reads (services/notifications/domain/rendering.py and
data/messages.toml): integer cents as "$1,740.00", days as words and ISO-8601,
moments in UTC, cards as "Visa ending 4242, expires 12/2034", product names
from the data file; a subject is one plain line; HTML is escaped, text is not;
a template a context does not fill is an error, not a blank in a mail."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from jinja2 import UndefinedError

from services.common.problems import status_of
from services.notifications.domain import rendering as R
from services.notifications.domain.rendering import SUBJECT_MAX, TEMPLATES, TemplateNotFound, render
from services.notifications.domain.samples import sample_context


@pytest.mark.parametrize("value,shown", [
    ("2026-11-21", "November 21, 2026 (2026-11-21)"),
    (date(2027, 2, 1), "February 1, 2027 (2027-02-01)"),
    ("2026-12-21T12:00:00+00:00", "December 21, 2026 at 12:00 UTC (2026-12-21T12:00:00Z)"),
    ("2026-12-21T19:30:00-05:00", "December 22, 2026 at 00:30 UTC (2026-12-22T00:30:00Z)"),  # in UTC
    (datetime(2026, 12, 21, 12, 0), "December 21, 2026 at 12:00 UTC (2026-12-21T12:00:00Z)"),  # naive: UTC
])
def test_a_day_or_moment_is_shown_in_words_and_iso_in_utc(value: str | date | datetime, shown: str) -> None:
    assert R.when(value) == shown


def test_iso_is_a_day_or_a_utc_moment_with_z() -> None:
    assert R.iso("2026-11-21") == "2026-11-21"
    assert R.iso(datetime(2026, 11, 21, 12, 0, 5, tzinfo=UTC)) == "2026-11-21T12:00:05Z"


@pytest.mark.parametrize("card,shown", [
    ({"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2034}, "Visa ending 4242, expires 12/2034"),
    ({"brand": "AMEX", "last4": "0005", "exp_month": 3, "exp_year": 2027},
     "American Express ending 0005, expires 03/2027"),
    ({"brand": "maestro", "last4": "1234", "exp_month": 1, "exp_year": 2030}, "Maestro ending 1234, expires 01/2030"),
])
def test_a_card_is_its_brand_last_four_and_expiry(card: dict[str, Any], shown: str) -> None:
    assert R.card(card) == shown


@pytest.mark.parametrize("sku,name", [("ultimate", "Ultimate"), ("duo_pro", "GitLab Duo Pro"),
                                      ("duo_enterprise", "GitLab Duo Enterprise"), ("duo_amazing", "Duo Amazing")])
def test_products_are_named_from_the_data_file_else_from_their_id(sku: str, name: str) -> None:
    assert R.product(sku) == name


@pytest.mark.parametrize("count,said", [(0, "today"), (1, "in 1 day"), (2, "in 2 days"), (65, "in 65 days")])
def test_days_left_read_as_words(count: int, said: str) -> None:
    assert R.in_days(count) == said


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_template_renders_a_subject_a_text_and_an_html_body(template: str) -> None:
    message = render(template, sample_context(template))
    assert message.subject and "\n" not in message.subject and len(message.subject) <= SUBJECT_MAX
    assert "acme" in (message.subject + message.text).lower()
    assert message.html.startswith("<!DOCTYPE html>")


@pytest.mark.parametrize("template,subject", [
    ("receipt", "Your receipt for acme: $1,740.00"),
    ("renewal_reminder", "Your Ultimate subscription for acme renews on November 21, 2027"),
    ("auto_renewal_notice", "Upcoming auto-renewal of acme on November 21, 2027: $14,160.00"),
    ("renewal_receipt", "Your subscription for acme has renewed: $11,880.00"),
    ("renewal_failed", "Payment failed for the renewal of acme"),
    ("subscription_expired", "Your Ultimate subscription for acme has expired"),
    ("card_expiring", "Your Visa card ending 4242 expires 12/2026: please update it"),
    ("trial_started", "Your Ultimate trial for acme has started"),
    ("trial_ending", "Your Ultimate trial for acme ends in 7 days"),
    ("trial_expired", "Your Ultimate trial for acme has ended"),
    ("trial_converted", "Thank you for choosing Ultimate for acme"),
])
def test_each_subject_says_what_happened_with_the_amount(template: str, subject: str) -> None:
    assert render(template, sample_context(template)).subject == subject


def test_a_subscription_that_will_not_renew_is_said_to_end() -> None:
    context = sample_context("renewal_reminder", {"auto_renew": "false"})
    assert render("renewal_reminder", context).subject == (
        "Your Ultimate subscription for acme ends on November 21, 2027")


def test_the_last_failed_charge_asks_for_action_and_an_earlier_one_says_when_it_is_tried_again() -> None:
    earlier = render("renewal_failed", sample_context("renewal_failed"))
    assert "We could not charge $11,880.00 for the renewal of acme on November 21, 2027 (2027-11-21)" in earlier.text
    assert "We will try again on November 24, 2027 at 00:00 UTC (2027-11-24T00:00:00Z)." in earlier.text
    final = render("renewal_failed", sample_context("renewal_failed", {"final": "true"}))
    assert final.subject == "Action required: the renewal of acme could not be charged"
    assert "This was the last attempt." in final.text and "try again" not in final.text


def test_a_card_expiring_mail_names_the_card_and_where_to_update_it() -> None:
    text = render("card_expiring", sample_context("card_expiring")).text
    assert "Your Visa ending 4242, expires 12/2026." in text and "on your billing page" in text


def test_a_subject_is_one_plain_line_of_at_most_255_characters() -> None:
    long_path = "a" * 300
    assert len(render("trial_started", sample_context("trial_started", {"namespace_path": long_path})).subject) \
        == SUBJECT_MAX
    two_lines = render("trial_started", sample_context("trial_started", {"namespace_path": "acme\r\nBcc: x"}))
    assert two_lines.subject == "Your Ultimate trial for acme Bcc: x has started"


def test_html_is_escaped_and_text_and_subjects_are_not() -> None:
    message = render("receipt", sample_context("receipt", {"company": "<b>Smith & Sons</b>",
                                                           "namespace_path": "a&b"}))
    assert "&lt;b&gt;Smith &amp; Sons&lt;/b&gt;" in message.html and "<b>Smith" not in message.html
    assert "<b>Smith & Sons</b>" in message.text
    assert message.subject == "Your receipt for a&b: $1,740.00"


def test_a_context_missing_a_field_is_an_error_not_a_blank() -> None:
    context = sample_context("receipt")
    del context["term_end"]
    with pytest.raises(UndefinedError):
        render("receipt", context)


def test_an_unknown_template_is_not_found() -> None:
    with pytest.raises(TemplateNotFound) as missing:
        render("newsletter", {})
    assert (status_of(missing.value), missing.value.code) == (404, "template_not_found")


@pytest.mark.parametrize("template", ["receipt", "renewal_reminder", "subscription_expired"])
def test_mails_scheduled_before_they_carried_a_billing_link_still_render(template: str) -> None:
    context = sample_context(template)
    assert context.pop("billing_url") is None  # the sample comes with no link; older rows have no key
    message = render(template, context)
    assert "Billing page" not in message.text


def test_a_receipt_scheduled_before_expansions_existed_still_renders() -> None:
    # A stored context from before receipts named an expansion's heading, kind and renewal.
    old = {k: v for k, v in sample_context("receipt").items() if k not in ("heading", "kind", "renewal")}
    message = render("receipt", old)
    assert "Subscription term:" in message.text and "Receipt for order" in message.text
