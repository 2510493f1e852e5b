"""The consumers' half of the event contracts (contracts/events.py): each
consumer of a topic accepts a payload that carries only what the contract
requires. The producers' half is the `event_contracts` fixture (tests/conftest.py):
every payload any test's code publishes meets its topic's contract."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from contracts import events
from messaging.inbox import DUPLICATE, IGNORED, receive
from services.checkout.adapters.models import InboxEvent as CheckoutInbox
from services.checkout.usecases.trial_events import HANDLERS as CHECKOUT_HANDLERS
from services.common.clock import FixedClock
from services.common.service import ServiceContext
from services.notifications.adapters.models import InboxEvent as NotificationsInbox
from services.notifications.app import create_app as create_notifications_app
from services.notifications.runtime import EXTENSION as NOTIFICATIONS
from services.notifications.runtime import Notifications
from services.notifications.usecases.events import handlers as notifications_handlers
from services.trials.adapters.models import InboxEvent as TrialsInbox
from services.trials.runtime import EXTENSION as TRIALS
from services.trials.usecases.events import handlers as trials_handlers
from tests.conftest import NOW, make_settings

CARD = {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2034}
LINE = {"sku": "premium", "kind": "plan", "description": "Premium plan, 5 seats, 12 months", "quantity": 5,
        "unit_amount": 34800, "amount": 174000, "discount": 0, "net": 174000}
SUBSCRIPTION = {"subscription_id": 9, "namespace_id": 100, "namespace_path": "acme", "plan": "premium",
                "seats": 5, "addons": [{"sku": "duo_pro", "seats": 5}], "features": ["epics"]}
TRIAL = {"version": 1, "trial_id": 7, "namespace_id": 100, "namespace_path": "acme", "kind": "ultimate",
         "status": "active", "ends_at": "2026-12-21T12:00:00+00:00", "occurred_at": NOW.isoformat(),
         "email": "owner@acme.test"}
RECONCILIATION = {"subscription_id": 9, "namespace_id": 100, "namespace_path": "acme", "email": "owner@acme.test",
                  "reconciliation_id": 4, "quarter": 1, "term_start": "2026-11-21", "overage_seats": 2,
                  "amount": 52200, "currency": "usd", "seats": 5}
GROUP = {"group_id": 102, "changed_at": NOW.isoformat()}
MEMBER = {"group_id": 100, "user_id": 3, "changed_at": NOW.isoformat()}
# One example per topic with more than its contract requires; the tests send only the required part.
EXAMPLES: dict[str, dict[str, Any]] = {
    "order.completed": {
        "order_id": 42, "namespace_id": 100, "user_id": 1, "email": "billing@acme.test",
        "namespace_path": "acme", "plan": "premium", "seats": 5, "lines": [LINE], "total": 174000,
        "currency": "USD", "term_start": "2026-11-21", "term_end": "2027-11-21", "card": CARD,
        "kind": "purchase", "variations": {"smb-discount-prompt": 1}},
    "order.refunded": {"order_id": 42, "namespace_id": 100, "namespace_path": "acme", "email": "billing@acme.test",
                       "amount": 34800, "currency": "USD", "refunded_total": 34800, "amount_charged": 174000,
                       "reason": "One seat bought by mistake"},
    "subscription.created": SUBSCRIPTION,
    "subscription.upgraded": {**SUBSCRIPTION, "plan_before": "premium", "plan": "ultimate"},
    "subscription.expanded": {**SUBSCRIPTION, "order_id": 43, "auto_renew": True,
                              "added": [{"kind": "addon", "sku": "duo_pro", "quantity": 5}]},
    "subscription.renewal_upcoming": {
        "subscription_id": 9, "namespace_id": 100, "namespace_path": "acme", "email": "billing@acme.test",
        "renewal_date": "2027-11-21", "days_before": 15, "auto_renew": True, "plan": "premium",
        "quote": {"lines": [LINE], "seats": 5, "total": 174000, "currency": "USD"}, "card": CARD},
    "subscription.renewed": {
        "subscription_id": 9, "namespace_id": 100, "namespace_path": "acme", "email": "billing@acme.test",
        "amount": 174000, "currency": "USD", "term_start": "2027-11-21", "term_end": "2028-11-21",
        "seats": 5, "changes": []},
    "subscription.renewal_failed": {
        "subscription_id": 9, "namespace_id": 100, "namespace_path": "acme", "email": "billing@acme.test",
        "amount": 174000, "currency": "USD", "attempt": 1, "renewal_date": "2027-11-21", "final": False,
        "update_card_url": "https://checkout.test/billing/100", "next_attempt_at": None},
    "subscription.expired": {
        "subscription_id": 9, "namespace_id": 100, "namespace_path": "acme", "email": "billing@acme.test",
        "plan": "premium", "term_end": "2027-11-21"},
    "subscription.auto_renew_changed": {
        "subscription_id": 9, "namespace_id": 100, "namespace_path": "acme", "email": "billing@acme.test",
        "auto_renew": False, "by": 1, "plan": "premium", "term_end": "2027-11-21", "grace_ends": "2027-12-05",
        "reason": "too_expensive", "renewal_total": 174000, "currency": "USD"},
    "billing.manager_invited": {
        "invitation_id": 4, "namespace_id": 100, "namespace_path": "acme", "email": "erin@partner.test",
        "accept_url": "https://checkout.test/billing/invitation?token=abc", "expires_at": "2026-11-24T12:00:00+00:00",
        "invited_by_email": "alice@acme.test"},
    "card.expiring": {"billing_account_id": 3, "email": "billing@acme.test", "brand": "visa",
                      "last4": "4242", "exp_month": 1, "exp_year": 2027},
    **{topic: {**TRIAL, "status": topic.removeprefix("trial.")} for topic in events.TRIAL_TOPICS},
    "subscription.overage_notice": {**RECONCILIATION, "max_seats_used": 7, "charge_on": "2027-02-28"},
    "subscription.seats_reconciled": {**RECONCILIATION, "seats_before": 5},
    "subscription.reconciliation_failed": {
        **RECONCILIATION, "attempt": 1, "final": False, "next_attempt_at": "2027-03-01",
        "update_card_url": "https://checkout.test/billing-account"},
    "subscription.seats_explained": {
        "subscription_id": 9, "namespace_id": 100, "namespace_path": "acme", "email": "owner@acme.test",
        "term_start": "2027-11-21", "term_end": "2028-11-21", "seats": 5, "send_on": "2027-11-22"},
    "subscription.duo_seats_removed": {
        "namespace_id": 100, "namespace_path": "acme", "email": "owner@acme.test", "sku": "duo_pro",
        "seats": 2, "removed_user_ids": [7, 8], "change_id": "renewal-9-2027-11-21"},
    "directory.group_created": {**GROUP, "name": "Acme QA", "path": "acme/qa", "parent_id": 100},
    "directory.group_renamed": {**GROUP, "name": "Acme Quality", "path": "acme/quality", "old_path": "acme/qa"},
    "directory.group_destroyed": {**GROUP, "path": "acme/quality"},
    "directory.member_added": {**MEMBER, "role": "developer", "billable": True},
    "directory.member_updated": {**MEMBER, "role": "maintainer", "billable": True, "previous_role": "developer"},
    "directory.member_removed": {**MEMBER, "role": "maintainer"},
    "directory.namespace_snapshot": {
        "namespace_id": 300, "path": "initech", "kind": "group", "parent_id": None, "destroyed": False,
        "changed_at": NOW.isoformat(), "last_event": "group_created", "plan": "premium",
        "addons": {"9": ["duo_pro"]}, "plan_changed_at": NOW.isoformat(),
        "members": [{"user_id": 1, "role": "owner", "changed_at": NOW.isoformat(), "last_event": "member_added"}]},
}


def required_only(topic: str) -> dict[str, Any]:
    return {name: EXAMPLES[topic][name] for name in events.required_fields(topic)}


@pytest.fixture
def notifications(fresh_db: Callable[[str], str], clock: FixedClock) -> Iterator[Notifications]:
    flask_app = create_notifications_app(make_settings("notifications", fresh_db("notifications")), clock)
    yield flask_app.extensions[NOTIFICATIONS]
    flask_app.extensions["service_context"].close()


def deliver(ctx: ServiceContext, inbox: type[Any], handlers: Any, topic: str, source: str) -> str:
    event = {"id": str(uuid.uuid4()), "topic": topic, "source": source, "occurred_at": NOW.isoformat(),
             "payload": required_only(topic)}
    with ctx.uow() as uow:
        return receive(uow, inbox, event, handlers)


def test_every_example_meets_its_contract() -> None:
    """So that what the consumers are given below is a payload a producer may send."""
    assert set(EXAMPLES) == set(events.CONTRACTS)
    for topic, example in EXAMPLES.items():
        assert events.violations(topic, required_only(topic)) == [], topic
        assert events.violations(topic, example) == [], topic


def test_notifications_needs_no_more_than_the_contract(notifications: Notifications) -> None:
    handlers = notifications_handlers(notifications)
    outcomes = {topic: deliver(notifications.ctx, NotificationsInbox, handlers, topic,
                               "trials" if topic.startswith("trial.") else "checkout")
                for topic in sorted(handlers)}
    assert not [topic for topic, outcome in outcomes.items() if outcome in (IGNORED, DUPLICATE)], outcomes


@pytest.mark.parametrize("topic", sorted(CHECKOUT_HANDLERS))
def test_checkout_needs_no_more_of_a_trial_event_than_the_contract(app: Flask, topic: str) -> None:
    outcome = deliver(app.extensions["checkout"].ctx, CheckoutInbox, CHECKOUT_HANDLERS, topic, "trials")
    assert outcome.startswith("trial ultimate on 100")


def test_trials_needs_no_more_of_an_event_than_the_contract(trials_app: Flask) -> None:
    trials = trials_app.extensions[TRIALS]
    handlers = trials_handlers(trials)
    outcomes = {topic: deliver(trials.ctx, TrialsInbox, handlers, topic, "checkout") for topic in handlers}
    # It read the plan and add-ons; no trial was running.
    purchases = ("subscription.created", "subscription.upgraded", "subscription.expanded")
    assert {t: outcomes.pop(t) for t in purchases} == dict.fromkeys(purchases, "converted 0")
    # The read model took the rest (a renewal stating no time leaves the plan alone).
    assert outcomes == {
        "directory.group_created": "group_created: 102 acme/qa",
        "directory.group_destroyed": "group_destroyed: 102 acme/quality",
        "directory.group_renamed": "group_renamed: 102 acme/quality",
        "directory.member_added": "member_added: user 3 in 100",
        "directory.member_removed": "member_removed: user 3 in 100",
        "directory.member_updated": "member_updated: user 3 in 100",
        "directory.namespace_snapshot": "snapshot: 300 initech premium",
        "subscription.expired": "plan: no time, not applied",
        "subscription.renewed": "plan: no time, not applied"}


def test_every_topic_a_consumer_handles_across_services_has_a_contract(
        notifications: Notifications, trials_app: Flask) -> None:
    handled = (set(notifications_handlers(notifications)) | set(CHECKOUT_HANDLERS)
               | set(trials_handlers(trials_app.extensions[TRIALS])))
    assert handled == set(events.CONTRACTS)
