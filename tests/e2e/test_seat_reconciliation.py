"""Quarterly seat reconciliation against localstripe: the Owners' notice on the
quarter's end, the charge seven days later for the quarters left, nothing in
the fourth quarter, dunning, exclusion, and each seat charged once whatever
races it (several workers, an add-seats purchase, a renewal)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.checkout.adapters.models import BillingAccount, SeatReconciliation, Subscription
from services.checkout.usecases import reconciliation
from services.common.clock import FixedClock
from services.notifications.domain import messages as M
from services.notifications.domain.rendering import render
from tests.e2e.helpers import provision_buyers
from tests.e2e.test_notifications_delivery import (  # noqa: F401  (fixtures)
    Smtp,
    db_url,
    machine,
    maildir,
    notifications_app,
    run,
    send_event,
    smtp_for,
)
from tests.e2e.test_renewals import at, checkout_of, events, subscribe, sweep
from tests.integration.test_directory_api import HOOKS, PLATFORM, member
from tests.support import LocalStripe, auth

pytestmark = pytest.mark.e2e
PREMIUM = 34800  # cents per seat per year
SEAT_TOPICS = ("subscription.overage_notice", "subscription.seats_reconciled")


def reconcile(app: Flask) -> dict[str, int]:
    c = checkout_of(app)
    return reconciliation.run(c, c.ctx.uow)


def hook(app: Flask, event: str, group: int, user: int, day: date) -> None:
    body = {**member(event, user, "Developer", at=f"{day.isoformat()}T09:00:00Z", group_id=group),
            "group_path": f"group-{group}"}
    response = app.test_client().post(HOOKS, json=body, headers={"X-Gitlab-Event": "System Hook", **PLATFORM})
    assert response.status_code == 200, response.json


def joined(app: Flask, group: int, users: range, day: date) -> None:
    for user in users:
        hook(app, "user_add_to_group", group, user, day)


def charges(app: Flask, localstripe: LocalStripe, user: int) -> list[int]:
    with Session(checkout_of(app).ctx.engine) as s:
        customer = s.scalar(select(BillingAccount.stripe_customer_id).where(BillingAccount.user_id == user))
    return sorted(pi.amount for pi in localstripe.payment_intents(customer) if pi.status == "succeeded")


def new_term(app: Flask, user: int, seats: int) -> Subscription:
    """A Premium term that starts today (the clock's), with `seats` bought."""
    return subscribe(app, user, seats=seats, days_left=(date(2027, 11, 21) - date(2026, 11, 21)).days)


def recs(app: Flask, sub_id: int) -> list[tuple[int, str, int | None, int | None]]:
    with Session(checkout_of(app).ctx.engine) as s:
        return [(r.quarter, r.status, r.overage_seats, r.amount) for r in s.scalars(
            select(SeatReconciliation).where(SeatReconciliation.subscription_id == sub_id)
            .order_by(SeatReconciliation.quarter))]


def test_a_term_of_quarters_as_the_platform_publishes_it(stripe_app: Flask, localstripe: LocalStripe,
                                                         clock: FixedClock) -> None:
    [owner] = provision_buyers(stripe_app, localstripe.url, 1, first_id=3000)
    sub = new_term(stripe_app, owner, seats=3)
    assert sub.term_start == date(2026, 11, 21)
    client = stripe_app.test_client()
    # Q1: five members take seats (three bought). The preview before adding them says what it will cost.
    said = client.post(f"/namespaces/{owner}/seats/preview", json={"user_ids": list(range(3101, 3106)),
                                                                    "role": "developer"}, headers=auth(owner)).json
    assert said["will_increase_overage"] and said["amount"] == 2 * PREMIUM * 3 // 4 == 52200
    joined(stripe_app, owner, range(3101, 3106), date(2026, 12, 1))
    at(clock, date(2027, 2, 20))
    assert reconcile(stripe_app)["overage_notices"] == 0  # the quarter has not closed yet
    at(clock, date(2027, 2, 21))
    assert reconcile(stripe_app) == {"overage_notices": 1, "reconciled": 0, "reconciliation_failures": 0}
    [notice] = events(stripe_app, "subscription.overage_notice", owner)
    assert (notice["quarter"], notice["overage_seats"], notice["max_seats_used"], notice["amount"],
            notice["charge_on"], notice["email"]) == (1, 2, 5, said["amount"], "2027-02-28", f"owner{owner}@test")
    mail = render("overage_notice", M.overage_notice(notice, clock.now()).context)
    assert mail.subject == f"group-{owner} used 2 seats more than it bought: $522.00 on February 28, 2027"
    assert reconcile(stripe_app)["overage_notices"] == 0  # once
    at(clock, date(2027, 2, 28))
    assert reconcile(stripe_app)["reconciled"] == 1
    assert charges(stripe_app, localstripe, owner) == [said["amount"]]  # what the preview said
    [receipt] = events(stripe_app, "subscription.seats_reconciled", owner)
    assert (receipt["seats"], receipt["seats_before"], receipt["amount"]) == (5, 3, 52200)
    assert "Your receipt for 2 seats added" in render("seats_reconciled", M.seats_reconciled(
        receipt, clock.now()).context).subject
    assert client.get(f"/namespaces/{owner}/seats", headers=auth(owner)).json["seats_bought"] == 5
    # Q2: one leaves, nobody above five: nothing. Q3: two more (seven): 2 x $87 x 1 quarter.
    hook(stripe_app, "user_remove_from_group", owner, 3105, date(2027, 3, 1))
    at(clock, date(2027, 5, 21))
    reconcile(stripe_app)
    joined(stripe_app, owner, range(3105, 3108), date(2027, 6, 1))
    for day in (date(2027, 8, 21), date(2027, 8, 28)):
        at(clock, day)
        reconcile(stripe_app)
    assert charges(stripe_app, localstripe, owner) == [2 * PREMIUM // 4, 52200]
    # Q4: more again, nothing charged: the renewal trues up.
    joined(stripe_app, owner, range(3108, 3110), date(2027, 9, 1))
    at(clock, date(2027, 11, 20))
    reconcile(stripe_app)
    assert recs(stripe_app, sub.id) == [(1, "charged", 2, 52200), (2, "clear", 0, 0), (3, "charged", 2, 17400)]
    history = client.get(f"/namespaces/{owner}/seats/reconciliations", headers=auth(owner)).json
    assert [h["status"] for h in history] == ["charged", "clear", "charged"]


def test_a_declined_card_goes_to_dunning(stripe_app: Flask, localstripe: LocalStripe, clock: FixedClock) -> None:
    [owner] = provision_buyers(stripe_app, localstripe.url, 1, first_id=3200, card="4000000000000341")
    sub = new_term(stripe_app, owner, seats=1)
    joined(stripe_app, owner, range(3201, 3203), date(2026, 12, 1))
    for day in (date(2027, 2, 21), date(2027, 2, 28), date(2027, 3, 1)):
        at(clock, day)
        reconcile(stripe_app)
    failed = events(stripe_app, "subscription.reconciliation_failed", owner)
    assert [(f["attempt"], f["next_attempt_at"], f["final"]) for f in failed] == [
        (1, "2027-03-01", False), (2, "2027-03-03", False)]
    assert recs(stripe_app, sub.id) == [(1, "retrying", 1, PREMIUM * 3 // 4)]
    assert charges(stripe_app, localstripe, owner) == []


def test_an_excluded_namespace_trues_up_at_renewal(stripe_app: Flask, localstripe: LocalStripe,
                                                    clock: FixedClock) -> None:
    [owner] = provision_buyers(stripe_app, localstripe.url, 1, first_id=3300)
    sub = new_term(stripe_app, owner, seats=1)
    joined(stripe_app, owner, range(3301, 3303), date(2026, 12, 1))
    client = stripe_app.test_client()
    body = {"excluded": True, "reason": "Enterprise agreement: annual true-up"}
    assert client.put(f"/admin/namespaces/{owner}/reconciliation", json=body,
                      headers=auth(owner)).json["code"] == "admin_required"
    done = client.put(f"/admin/namespaces/{owner}/reconciliation", json=body, headers=auth(9, roles=("admin",)))
    assert done.status_code == 200 and done.json["reconciliation_excluded"] is True
    at(clock, date(2027, 2, 28))
    reconcile(stripe_app)
    assert recs(stripe_app, sub.id) == [(1, "excluded", 1, PREMIUM * 3 // 4)]
    assert events(stripe_app, "subscription.overage_notice", owner) == []
    audit = client.get(f"/namespaces/{owner}/seats/settings/changes", headers=auth(owner)).json
    assert audit[0]["reason"] == "Enterprise agreement: annual true-up" and audit[0]["changed_by"] == 9


@pytest.mark.parametrize(("change", "value", "status", "charged"), [
    ("seats", 2, "charged", [PREMIUM * 3 // 4]),  # an add-seats purchase: 2 of the 3 used are bought
    ("seats", 3, "covered", []),  # ... all 3
    ("term_start", date(2027, 2, 25), "superseded", []),  # renewed first: a new term
])
def test_what_changed_after_the_notice_is_not_charged_again(
        stripe_app: Flask, localstripe: LocalStripe, clock: FixedClock, change: str, value: Any, status: str,
        charged: list[int]) -> None:
    [owner] = provision_buyers(stripe_app, localstripe.url, 1, first_id=3400)
    sub = new_term(stripe_app, owner, seats=1)
    joined(stripe_app, owner, range(3401, 3404), date(2026, 12, 1))
    at(clock, date(2027, 2, 21))
    reconcile(stripe_app)
    with Session(checkout_of(stripe_app).ctx.engine) as s:
        setattr(s.get(Subscription, sub.id), change, value)
        s.commit()
    at(clock, date(2027, 2, 28))
    reconcile(stripe_app)
    assert [(q, st) for q, st, _, _ in recs(stripe_app, sub.id)] == [(1, status)]
    assert charges(stripe_app, localstripe, owner) == charged


def test_several_workers_charge_once(stripe_app: Flask, localstripe: LocalStripe, clock: FixedClock,
                                     postgres_only: None) -> None:
    owners = provision_buyers(stripe_app, localstripe.url, 6, first_id=3600)
    for owner in owners:
        new_term(stripe_app, owner, seats=1)
        joined(stripe_app, owner, range(owner * 10, owner * 10 + 2), date(2026, 12, 1))

    def worker(_: Any) -> dict[str, int]:
        return reconcile(stripe_app)
    results = []
    for day in (date(2027, 2, 21), date(2027, 2, 28)):  # the notices, then the charges, four workers each
        at(clock, day)
        with ThreadPoolExecutor(4) as pool:
            results += list(pool.map(worker, range(4)))
    assert sum(r["overage_notices"] for r in results) == 6 and sum(r["reconciled"] for r in results) == 6
    for owner in owners:
        assert charges(stripe_app, localstripe, owner) == [PREMIUM * 3 // 4]
        assert len(events(stripe_app, "subscription.overage_notice", owner)) == 1


def test_owners_hear_how_seats_are_counted_the_day_after_a_renewal(stripe_app: Flask, localstripe: LocalStripe,
                                                                   clock: FixedClock) -> None:
    [owner] = provision_buyers(stripe_app, localstripe.url, 1, first_id=3700)
    sub = subscribe(stripe_app, owner, days_left=1)
    at(clock, sub.term_end)
    sweep(stripe_app)
    [explained] = events(stripe_app, "subscription.seats_explained", owner)
    assert explained["send_on"] == (sub.term_end + timedelta(days=1)).isoformat()
    planned = M.seats_explained(explained, clock.now())
    assert planned.send_after.date() == sub.term_end + timedelta(days=1)
    subject = render("seats_explained", planned.context).subject
    assert subject == f"How seats are counted and billed for group-{owner}"


def test_owners_get_the_notice_and_the_receipt_at_the_smtp_sink(
        stripe_app: Flask, localstripe: LocalStripe, clock: FixedClock, request: pytest.FixtureRequest) -> None:
    """Checkout's events, delivered to notifications as the relay would, and sent
    by the mail sender to a real SMTP server (test_notifications_delivery's fixtures)."""
    smtp: Smtp = request.getfixturevalue("smtp_for")()
    sender: Flask = request.getfixturevalue("notifications_app")
    mail = sender.test_client()
    [owner] = provision_buyers(stripe_app, localstripe.url, 1, first_id=3800)
    new_term(stripe_app, owner, seats=1)
    joined(stripe_app, owner, range(3801, 3804), date(2026, 12, 1))
    relayed = 0
    for day in (date(2027, 2, 21), date(2027, 2, 28)):
        at(clock, day)
        reconcile(stripe_app)
        seat_mail = [(topic, payload) for topic in SEAT_TOPICS for payload in events(stripe_app, topic, owner)]
        for topic, payload in seat_mail[relayed:]:
            send_event(mail, topic, payload)
        relayed = len(seat_mail)
        run(sender, smtp)
    subjects = [" ".join(str(m["Subject"]).split()) for m in smtp.messages()]
    assert sorted(subjects) == sorted([
        f"group-{owner} used 2 seats more than it bought: $522.00 on February 28, 2027",
        f"Your receipt for 2 seats added to group-{owner}: $522.00"])
    assert {str(m["To"]) for m in smtp.messages()} == {f"owner{owner}@test"}


def test_a_late_sweep_still_gives_the_owners_a_week(stripe_app: Flask, localstripe: LocalStripe,
                                                    clock: FixedClock) -> None:
    [owner] = provision_buyers(stripe_app, localstripe.url, 1, first_id=3900)
    new_term(stripe_app, owner, seats=1)
    joined(stripe_app, owner, range(3901, 3903), date(2026, 12, 1))
    at(clock, date(2027, 3, 3))  # ten days after the quarter ended, the first sweep since
    assert reconcile(stripe_app) == {"overage_notices": 1, "reconciled": 0, "reconciliation_failures": 0}
    [notice] = events(stripe_app, "subscription.overage_notice", owner)
    assert notice["charge_on"] == "2027-03-10"
    at(clock, date(2027, 3, 10))
    assert reconcile(stripe_app)["reconciled"] == 1
