"""The notifications service over HTTP: events in, a schedule of messages out,
each under a unique dedupe key; rendering; the admin API and previews."""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from services.common.clock import FixedClock
from services.notifications.adapters.models import InboxEvent, Notification
from services.notifications.app import create_app
from services.notifications.domain.rendering import money, render
from tests.conftest import NOW, make_settings
from tests.support import LiveServer, auth

SERVICE = auth(0, roles=("service",))
ADMIN = auth(9, roles=("admin",))
CARD = {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2034}
LINE = {"sku": "premium", "kind": "plan", "description": "Premium plan, 5 seats, 12 months", "quantity": 5,
        "unit_amount": 34800, "amount": 174000, "discount": 0, "net": 174000}
ENDS = NOW + timedelta(days=30)

ORDER = {"order_id": 42, "namespace_id": 100, "namespace_path": "acme", "email": "billing@acme.test",
         "company": "Acme Corp", "plan": "premium", "seats": 5, "lines": [LINE], "subtotal": 174000,
         "discount_total": 0, "total": 174000, "currency": "USD", "term_start": "2026-11-21",
         "term_end": "2027-11-21", "card": CARD, "discount_code": None, "user_id": 1, "status": "completed"}
QUOTE = {"lines": [{**LINE, "description": "Premium plan, 7 seats, 12 months", "quantity": 7,
                    "amount": 243600, "net": 243600}], "seats": 7, "seats_owed": 2, "total": 243600,
         "currency": "USD"}
UPCOMING = {"subscription_id": 9, "namespace_id": 100, "namespace_path": "acme", "email": "billing@acme.test",
            "company": "Acme Corp", "renewal_date": "2027-11-21", "days_before": 15, "auto_renew": True,
            "plan": "premium", "quote": QUOTE,
            "card": {**CARD, "exp_year": 2027, "exp_month": 10, "expired": False, "expires_before_renewal": True}}
RENEWED = {"subscription_id": 9, "namespace_path": "acme", "email": "billing@acme.test", "amount": 243600,
           "currency": "USD", "term_start": "2027-11-21", "term_end": "2028-11-21", "seats": 7,
           "changes": ["Seats rose from 5 to 7"]}
FAILED = {"subscription_id": 9, "namespace_path": "acme", "email": "billing@acme.test", "amount": 243600,
          "currency": "USD", "attempt": 2, "renewal_date": "2027-11-21",
          "next_attempt_at": "2027-11-24T00:00:00+00:00", "final": False,
          "update_card_url": "https://checkout.test/billing/100"}
EXPIRED = {"subscription_id": 9, "namespace_path": "acme", "email": "billing@acme.test", "plan": "premium",
           "term_end": "2027-11-21"}
CARD_EXPIRING = {"billing_account_id": 3, "email": "billing@acme.test", "brand": "visa", "last4": "4242",
                 "exp_month": 1, "exp_year": 2027}
TRIAL = {"trial_id": 7, "namespace_id": 100, "namespace_path": "acme", "kind": "ultimate", "status": "active",
         "ends_at": ENDS.isoformat(), "email": "owner@acme.test", "occurred_at": NOW.isoformat(),
         "user_id": 1, "grants_plan": "ultimate", "plan_before": "free"}


@pytest.fixture
def notifications_app(fresh_db: Callable[[str], str], clock: FixedClock) -> Iterator[Flask]:
    flask_app = create_app(make_settings("notifications", fresh_db("notifications")), clock)
    yield flask_app
    flask_app.extensions["service_context"].close()


@pytest.fixture
def client(notifications_app: Flask) -> FlaskClient:
    return notifications_app.test_client()


def send_event(client: FlaskClient, topic: str, payload: dict[str, Any], event_id: str | None = None,
               headers: dict[str, str] | None = None) -> Any:
    envelope = {"id": event_id or str(uuid.uuid4()), "topic": topic,
                "source": "trials" if topic.startswith("trial.") else "checkout",
                "occurred_at": NOW.isoformat(), "payload": payload}
    return client.post("/internal/events", json=envelope, headers=SERVICE if headers is None else headers)


def deliver(client: FlaskClient, topic: str, payload: dict[str, Any], event_id: str | None = None) -> str:
    response = send_event(client, topic, payload, event_id)
    assert response.status_code == 200, response.json
    return str(response.json["outcome"])


def rows(app: Flask) -> list[Notification]:
    with Session(app.extensions["service_context"].engine) as s:
        return list(s.scalars(select(Notification).order_by(Notification.id)))


def by_key(app: Flask) -> dict[str, Notification]:
    return {n.dedupe_key: n for n in rows(app)}


def count(app: Flask, model: Any) -> int:
    with Session(app.extensions["service_context"].engine) as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


# --- scheduling ------------------------------------------------------------------------
@pytest.mark.parametrize("topic,payload,key,template", [
    ("order.completed", ORDER, "receipt/42", "receipt"),
    ("subscription.renewal_upcoming", UPCOMING, "renewal_reminder/9/2027-11-21/15", "auto_renewal_notice"),
    ("subscription.renewal_upcoming", {**UPCOMING, "days_before": 30}, "renewal_reminder/9/2027-11-21/30",
     "renewal_reminder"),
    ("subscription.renewal_upcoming", {**UPCOMING, "auto_renew": False, "quote": None, "card": None},
     "renewal_reminder/9/2027-11-21/15", "renewal_reminder"),
    ("subscription.renewed", RENEWED, "renewal_receipt/9/2027-11-21", "renewal_receipt"),
    ("subscription.renewal_failed", FAILED, "renewal_failed/9/2027-11-21/2", "renewal_failed"),
    ("subscription.expired", EXPIRED, "subscription_expired/9/2027-11-21", "subscription_expired"),
    ("card.expiring", CARD_EXPIRING, "card_expiring/3/4242/2027-01", "card_expiring"),
])
def test_each_topic_schedules_its_message_once(client: FlaskClient, notifications_app: Flask, topic: str,
                                               payload: dict[str, Any], key: str, template: str) -> None:
    assert deliver(client, topic, payload) == f"scheduled {key}"
    [row] = rows(notifications_app)
    assert (row.dedupe_key, row.template, row.status, row.send_after) == (key, template, "scheduled", NOW)
    assert row.recipient == payload["email"] and row.traffic == "real" and row.attempts == 0
    assert row.subject == render(template, row.context).subject
    # the same facts again under a new event id (a replay), and the same event again
    assert deliver(client, topic, copy.deepcopy(payload)) == "nothing new (1 already scheduled)"
    event_id = str(uuid.uuid4())
    deliver(client, topic, payload, event_id)
    assert deliver(client, topic, payload, event_id) == "duplicate"
    assert [r.dedupe_key for r in rows(notifications_app)] == [key]


def test_unknown_extra_fields_are_fine_and_unknown_topics_ignored(client: FlaskClient,
                                                                 notifications_app: Flask) -> None:
    assert deliver(client, "order.completed", {**ORDER, "shiny_new_field": {"x": 1}}) == "scheduled receipt/42"
    assert deliver(client, "order.archived", {"order_id": 1}) == "ignored"  # a topic of tomorrow
    assert len(rows(notifications_app)) == 1


def test_synthetic_traffic_schedules_no_mail(client: FlaskClient, notifications_app: Flask) -> None:
    for topic, payload in [("order.completed", ORDER), ("trial.started", TRIAL),
                           ("subscription.renewal_upcoming", UPCOMING)]:
        assert deliver(client, topic, {**payload, "traffic": "synthetic"}) == "synthetic: no mail"
    assert rows(notifications_app) == []
    assert count(notifications_app, InboxEvent) == 3  # handled (once), just no mail


def test_demo_traffic_is_scheduled_and_marked(client: FlaskClient, notifications_app: Flask) -> None:
    deliver(client, "order.completed", {**ORDER, "traffic": "demo"})
    assert [r.traffic for r in rows(notifications_app)] == ["demo"]


def test_an_event_missing_what_the_mail_needs_is_refused_and_kept_for_retry(
        client: FlaskClient, notifications_app: Flask) -> None:
    incomplete = {k: v for k, v in ORDER.items() if k != "email"}
    response = send_event(client, "order.completed", incomplete, "evt-1")
    assert response.status_code == 422 and response.json["code"] == "invalid_event"
    assert "email" in response.json["detail"]
    floats = send_event(client, "order.completed", {**ORDER, "total": 1740.0})
    assert floats.status_code == 422 and "integer" in floats.json["detail"]
    assert rows(notifications_app) == [] and count(notifications_app, InboxEvent) == 0
    # once the publisher sends it whole, the same event id goes through
    assert deliver(client, "order.completed", ORDER, "evt-1") == "scheduled receipt/42"


def test_the_events_endpoint_is_for_services_only(client: FlaskClient, notifications_app: Flask) -> None:
    assert send_event(client, "order.completed", ORDER, headers={}).status_code == 401
    refused = send_event(client, "order.completed", ORDER, headers=ADMIN)
    assert refused.status_code == 403 and refused.json["code"] == "service_only"
    assert rows(notifications_app) == []


def test_racing_deliveries_of_the_same_facts_schedule_once(postgres_only: None, notifications_app: Flask) -> None:
    server = LiveServer(notifications_app)
    outcomes: list[str] = []
    barrier = threading.Barrier(10)

    def post() -> None:
        envelope = {"id": str(uuid.uuid4()), "topic": "trial.started", "source": "trials",
                    "occurred_at": NOW.isoformat(), "payload": TRIAL}
        barrier.wait()
        response = requests.post(f"{server.url}/internal/events", json=envelope, headers=SERVICE, timeout=30)
        outcomes.append(response.json().get("outcome", response.text))

    threads = [threading.Thread(target=post) for _ in range(10)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        server.stop()
    assert len(outcomes) == 10 and all(o.startswith(("scheduled", "nothing new")) for o in outcomes), outcomes
    assert sum(o.startswith("scheduled") for o in outcomes) == 1, outcomes
    assert sorted(n.template for n in rows(notifications_app)) == ["trial_ending", "trial_ending", "trial_started"]
    assert count(notifications_app, InboxEvent) == 10


# --- trials ----------------------------------------------------------------------------
def test_trial_start_mails_now_and_schedules_the_ending_reminders(client: FlaskClient,
                                                                  notifications_app: Flask) -> None:
    outcome = deliver(client, "trial.started", TRIAL)
    assert outcome.startswith("scheduled trial_started/7")
    found = {k: (n.template, n.send_after, n.status) for k, n in by_key(notifications_app).items()}
    day = ENDS.date().isoformat()
    assert found == {
        "trial_started/7": ("trial_started", NOW, "scheduled"),
        f"trial_ending/7/{day}/7": ("trial_ending", ENDS - timedelta(days=7), "scheduled"),
        f"trial_ending/7/{day}/1": ("trial_ending", ENDS - timedelta(days=1), "scheduled"),
    }
    assert by_key(notifications_app)[f"trial_ending/7/{day}/1"].context["days"] == 1
    assert deliver(client, "trial.started", TRIAL) == "nothing new (3 already scheduled)"


def test_reminders_already_in_the_past_are_skipped(client: FlaskClient, notifications_app: Flask) -> None:
    short = {**TRIAL, "ends_at": (NOW + timedelta(days=3)).isoformat()}
    deliver(client, "trial.started", short)
    assert sorted(by_key(notifications_app)) == [
        f"trial_ending/7/{(NOW + timedelta(days=3)).date().isoformat()}/1", "trial_started/7"]


def test_an_extension_moves_the_ending_reminders(client: FlaskClient, notifications_app: Flask,
                                                 clock: FixedClock) -> None:
    deliver(client, "trial.started", TRIAL)
    old, new = ENDS.date().isoformat(), (ENDS + timedelta(days=30)).date().isoformat()
    clock.advance(timedelta(days=24))  # the 7-day reminder has gone out
    with Session(notifications_app.extensions["service_context"].engine) as s, s.begin():
        s.execute(update(Notification).where(Notification.dedupe_key == f"trial_ending/7/{old}/7")
                  .values(status="sent"))
    extended = {**TRIAL, "ends_at": (ENDS + timedelta(days=30)).isoformat()}
    outcome = deliver(client, "trial.extended", extended)
    assert outcome == f"scheduled trial_ending/7/{new}/7, trial_ending/7/{new}/1; canceled 1"
    status = {k: n.status for k, n in by_key(notifications_app).items()}
    assert status == {"trial_started/7": "scheduled", f"trial_ending/7/{old}/7": "sent",
                      f"trial_ending/7/{old}/1": "canceled", f"trial_ending/7/{new}/7": "scheduled",
                      f"trial_ending/7/{new}/1": "scheduled"}
    assert by_key(notifications_app)[f"trial_ending/7/{new}/1"].send_after == ENDS + timedelta(days=29)
    # the start, delivered again late, does not bring the old end back
    assert deliver(client, "trial.started", TRIAL) == "nothing new (1 already scheduled)"
    assert by_key(notifications_app)[f"trial_ending/7/{old}/1"].status == "canceled"


def test_a_reactivation_schedules_reminders_for_the_new_end(client: FlaskClient, notifications_app: Flask,
                                                            clock: FixedClock) -> None:
    deliver(client, "trial.started", TRIAL)
    clock.set(ENDS)
    deliver(client, "trial.expired", {**TRIAL, "status": "expired"})
    clock.advance(timedelta(days=3))
    new_end = clock.now() + timedelta(days=30)
    outcome = deliver(client, "trial.reactivated", {**TRIAL, "ends_at": new_end.isoformat()})
    assert outcome.startswith(f"scheduled trial_ending/7/{new_end.date().isoformat()}/7")
    assert by_key(notifications_app)["trial_expired/7"].status == "scheduled"


@pytest.mark.parametrize("topic,template", [("trial.expired", "trial_expired"),
                                            ("trial.converted", "trial_converted")])
def test_expiry_and_conversion_cancel_the_unsent_reminders(client: FlaskClient, notifications_app: Flask,
                                                           topic: str, template: str) -> None:
    deliver(client, "trial.started", TRIAL)
    outcome = deliver(client, topic, {**TRIAL, "status": template.removeprefix("trial_")})
    assert outcome == f"scheduled {template}/7; canceled 2"
    status = {n.template: n.status for n in rows(notifications_app)}
    assert status == {"trial_started": "scheduled", "trial_ending": "canceled", template: "scheduled"}
    assert deliver(client, topic, TRIAL) == "nothing new (1 already scheduled)"
    if topic == "trial.converted":  # a late extension does not revive reminders for a bought trial
        deliver(client, "trial.extended", {**TRIAL, "ends_at": (ENDS + timedelta(days=30)).isoformat()})
        assert [n.status for n in rows(notifications_app) if n.template == "trial_ending"] == ["canceled"] * 2


# --- rendering -------------------------------------------------------------------------
@pytest.mark.parametrize("cents,shown", [(174000, "$1,740.00"), (5, "$0.05"), (100, "$1.00"),
                                         (123456789, "$1,234,567.89"), (-1000, "-$10.00"), (0, "$0.00")])
def test_amounts_are_integer_cents_shown_as_dollars(cents: int, shown: str) -> None:
    assert money(cents, "USD") == shown


def test_a_receipt_shows_exact_amounts_dates_and_card(client: FlaskClient, notifications_app: Flask) -> None:
    discounted = {**ORDER, "lines": [{**LINE, "discount": 60000, "net": 114000}], "subtotal": 174000,
                  "discount_total": 60000, "total": 114000, "discount_code": "SMB19"}
    deliver(client, "order.completed", discounted)
    [row] = rows(notifications_app)
    message = render(row.template, row.context)
    assert message.subject == "Your receipt for acme: $1,140.00"
    for body in (message.text, message.html):
        assert "$1,740.00" in body and "$600.00" in body and "$1,140.00" in body and "SMB19" in body
        assert "November 21, 2026 (2026-11-21)" in body and "November 21, 2027 (2027-11-21)" in body
        assert "Visa ending 4242, expires 12/2034" in body
        assert "Premium" in body and "5 seats" in body
    assert "Total charged: $1,140.00" in message.text


def test_html_is_escaped_and_text_is_not(client: FlaskClient, notifications_app: Flask) -> None:
    deliver(client, "order.completed", {**ORDER, "company": "<b>Smith & Sons</b>"})
    [row] = rows(notifications_app)
    message = render(row.template, row.context)
    assert "&lt;b&gt;Smith &amp; Sons&lt;/b&gt;" in message.html and "<b>Smith" not in message.html
    assert "<b>Smith & Sons</b>" in message.text


def test_the_auto_renewal_notice_lists_what_will_be_charged(client: FlaskClient,
                                                            notifications_app: Flask) -> None:
    deliver(client, "subscription.renewal_upcoming", UPCOMING)
    [row] = rows(notifications_app)
    message = render(row.template, row.context)
    assert message.subject == "Upcoming auto-renewal of acme on November 21, 2027: $2,436.00"
    text = message.text
    assert "Premium plan, 7 seats, 12 months: 7 x $348.00 = $2,436.00" in text
    assert "Seats: 7" in text and "Seats owed: 2" in text
    assert "Total to be charged on November 21, 2027: $2,436.00" in text
    assert "Payment method: Visa ending 4242, expires 10/2027" in text
    assert "WARNING: this card expires before the renewal" in text
    assert "expires before the renewal" in message.html and "$2,436.00" in message.html


def test_an_expired_or_missing_card_is_warned_about(client: FlaskClient, notifications_app: Flask) -> None:
    deliver(client, "subscription.renewal_upcoming",
            {**UPCOMING, "card": {**UPCOMING["card"], "expired": True}, "quote": {**QUOTE, "seats_owed": 0}})
    deliver(client, "subscription.renewal_upcoming", {**UPCOMING, "subscription_id": 10, "card": None})
    expired, missing = (render(r.template, r.context).text for r in rows(notifications_app))
    assert "WARNING: this card has expired" in expired and "Seats owed: none" in expired
    assert "WARNING: there is no card on file" in missing


def test_trial_mails_show_the_end_in_utc(client: FlaskClient, notifications_app: Flask) -> None:
    deliver(client, "trial.started", {**TRIAL, "ends_at": "2026-12-21T13:00:00+01:00"})
    ending = next(r for r in rows(notifications_app) if r.dedupe_key.startswith("trial_ending/7/2026-12-21/7"))
    message = render(ending.template, ending.context)
    assert message.subject == "Your Ultimate trial for acme ends in 7 days"
    assert "December 21, 2026 at 12:00 UTC (2026-12-21T12:00:00Z)" in message.text
    assert ending.send_after == ENDS - timedelta(days=7)


# --- the admin API ---------------------------------------------------------------------
def test_support_lists_and_reads_notifications(client: FlaskClient, notifications_app: Flask) -> None:
    deliver(client, "order.completed", ORDER)
    deliver(client, "trial.started", TRIAL)
    assert client.get("/notifications").status_code == 401
    refused = client.get("/notifications", headers=auth(1))
    assert refused.status_code == 403 and refused.json["code"] == "admin_required"
    everything = client.get("/notifications", headers=ADMIN)
    assert everything.status_code == 200 and len(everything.json) == 4
    mine = client.get("/notifications?recipient=owner@acme.test&status=scheduled", headers=ADMIN).json
    assert sorted(n["template"] for n in mine) == ["trial_ending", "trial_ending", "trial_started"]
    assert {n["attempts"] for n in mine} == {0} and {n["last_error"] for n in mine} == {None}
    assert client.get("/notifications?status=sent", headers=ADMIN).json == []
    bad = client.get("/notifications?status=lost", headers=ADMIN)
    assert bad.status_code == 422 and bad.json["code"] == "validation_failed"
    receipt = next(n for n in everything.json if n["template"] == "receipt")
    detail = client.get(f"/notifications/{receipt['id']}", headers=ADMIN)
    assert detail.status_code == 200
    assert detail.json["dedupe_key"] == "receipt/42" and detail.json["context"]["total"] == 174000
    assert client.get(f"/notifications/{receipt['id']}", headers=auth(1)).status_code == 403
    missing = client.get("/notifications/999999", headers=ADMIN)
    assert missing.status_code == 404 and missing.json["code"] == "notification_not_found"


@pytest.mark.parametrize("template", ["receipt", "renewal_reminder", "auto_renewal_notice", "renewal_receipt",
                                      "renewal_failed", "subscription_expired", "card_expiring",
                                      "trial_started", "trial_ending", "trial_expired", "trial_converted"])
def test_every_template_previews(client: FlaskClient, template: str) -> None:
    response = client.get(f"/notifications/preview?template={template}", headers=ADMIN)
    assert response.status_code == 200, response.json
    body = response.json
    assert body["template"] == template and body["subject"] and body["text"].strip()
    assert body["html"].startswith("<!DOCTYPE html>") and "acme" in (body["text"] + body["subject"]).lower()


def test_a_preview_takes_overrides_and_is_for_admins(client: FlaskClient, notifications_app: Flask) -> None:
    url = "/notifications/preview?template=receipt&total=174000&namespace_path=globex&company=Globex"
    assert client.get(url).status_code == 401
    assert client.get(url, headers=auth(1)).json["code"] == "admin_required"
    preview = client.get(url, headers=ADMIN).json
    assert preview["subject"] == "Your receipt for globex: $1,740.00"
    assert "Thank you for your purchase, Globex." in preview["text"]
    notice = client.get("/notifications/preview?template=auto_renewal_notice&total=99900&seats_owed=3"
                        "&expired=true&last4=1111", headers=ADMIN).json
    assert "Total to be charged on November 21, 2027: $999.00" in notice["text"]
    assert "Seats owed: 3" in notice["text"] and "ending 1111" in notice["text"]
    assert "WARNING: this card has expired" in notice["text"]
    unknown = client.get("/notifications/preview?template=newsletter", headers=ADMIN)
    assert unknown.status_code == 404 and unknown.json["code"] == "template_not_found"
    wrong = client.get("/notifications/preview?template=trial_started&total=5", headers=ADMIN)
    assert wrong.status_code == 422 and "total" in wrong.json["errors"]["query"]
    garbled = client.get("/notifications/preview?template=receipt&seats=many", headers=ADMIN)
    assert garbled.status_code == 422
    stranger = client.get("/notifications/preview?template=receipt&colour=red", headers=ADMIN)
    assert stranger.status_code == 422 and stranger.json["code"] == "validation_failed"
    assert rows(notifications_app) == []  # previews schedule nothing


def test_a_topic_from_a_service_that_does_not_own_it_is_refused(client: FlaskClient,
                                                                notifications_app: Flask) -> None:
    response = client.post("/internal/events", headers=SERVICE, json={
        "id": str(uuid.uuid4()), "topic": "order.completed", "source": "trials",
        "occurred_at": "2026-11-21T12:00:00+00:00", "payload": ORDER})
    assert response.status_code == 403 and response.json["code"] == "source_not_allowed"
    assert rows(notifications_app) == []


AUTO_RENEW_OFF = {"subscription_id": 9, "namespace_id": 100, "namespace_path": "acme", "email": "billing@acme.test",
                  "auto_renew": False, "by": 1, "plan": "premium", "term_end": "2027-11-21",
                  "grace_ends": "2027-12-05", "reason": "too_expensive", "reason_label": "It costs too much",
                  "renewal_total": 174000, "currency": "USD"}


def test_auto_renew_changes_are_confirmed_by_mail_each_time(client: FlaskClient, notifications_app: Flask,
                                                            clock: FixedClock) -> None:
    deliver(client, "subscription.auto_renew_changed", AUTO_RENEW_OFF)
    clock.advance(timedelta(minutes=5))
    deliver(client, "subscription.auto_renew_changed", {**AUTO_RENEW_OFF, "auto_renew": True, "reason": None})
    off, on = (render(row.template, row.context) for row in rows(notifications_app))
    assert off.subject == "Automatic renewal is off for acme: it ends on November 21, 2027"
    assert "your reason: It costs too much" in off.text
    assert "Paid features continue until December 5, 2027 (2027-12-05); then acme returns to the Free plan" \
        in off.text
    assert on.subject == "Automatic renewal is on for acme"
    assert "renews automatically on November 21, 2027 (2027-11-21), for $1,740.00" in on.text


def test_every_mail_links_the_billing_page_of_its_namespace(client: FlaskClient,
                                                            notifications_app: Flask) -> None:
    deliver(client, "order.completed", ORDER)
    [row] = rows(notifications_app)
    message = render(row.template, row.context)
    assert row.context["billing_url"] == "http://127.0.0.1:8001/billing/100"
    assert "Billing page: http://127.0.0.1:8001/billing/100" in message.text
    assert 'href="http://127.0.0.1:8001/billing/100"' in message.html
