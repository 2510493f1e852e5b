"""Cards on the Billing page's API against localstripe: add, make default, remove
(detached at Stripe), the default never moved silently, expired ones marked."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from devtools.devcard import confirm_card_setup
from services.checkout.adapters.models import (
    BillingAuditEntry,
    FunnelEventRow,
    Membership,
    Namespace,
    OutboxMessage,
    PaymentMethod,
    ScheduledChange,
    SeatHolding,
    Subscription,
    User,
)
from services.checkout.usecases import renewals
from services.common.clock import FixedClock
from tests.support import LocalStripe, auth

ALICE, BOB = 1, 2
GLOBEX = 200
CARDS = f"/namespaces/{GLOBEX}/billing/cards"


def add_card(client: Any, stripe_url: str, user: int = ALICE, make_default: bool | None = None,
             number: str = "4242424242424242") -> Any:
    setup = client.post(f"/namespaces/{GLOBEX}/billing/card-setup", headers=auth(user))
    assert setup.status_code == 201, setup.json
    confirm_card_setup(stripe_url, setup.json["client_secret"], number)
    body: dict[str, Any] = {"setup_intent_id": setup.json["setup_intent_id"]}
    if make_default is not None:
        body["make_default"] = make_default
    return client.post(CARDS, json=body, headers=auth(user))


def test_change_the_default_card_then_remove_the_old_one(stripe_app: Flask, localstripe: LocalStripe) -> None:
    client = stripe_app.test_client()
    first = add_card(client, localstripe.url)
    assert first.status_code == 201 and first.json["is_default"] is True  # no default yet: it becomes it
    spare = add_card(client, localstripe.url)
    assert spare.json["is_default"] is False  # a spare card never silently takes over the renewal
    listed = client.get(CARDS, headers=auth(ALICE)).json
    assert [(c["id"], c["is_default"], c["expired"]) for c in listed["cards"]] == [
        (first.json["id"], True, False), (spare.json["id"], False, False)]
    assert listed["renewing"] == ["globex"]

    refused = client.delete(f"{CARDS}/{first.json['id']}", headers=auth(ALICE))
    assert refused.status_code == 409 and refused.json["code"] == "card_needed_for_renewal"

    made = client.put(f"{CARDS}/{spare.json['id']}/default", headers=auth(ALICE))
    assert made.status_code == 200 and made.json["is_default"] is True
    removed = client.delete(f"{CARDS}/{first.json['id']}", headers=auth(ALICE))
    assert removed.status_code == 204, removed.json
    assert [c["id"] for c in client.get(CARDS, headers=auth(ALICE)).json["cards"]] == [spare.json["id"]]

    engine = stripe_app.extensions["checkout"].ctx.engine
    with Session(engine) as s:
        gone = s.get(PaymentMethod, first.json["id"])
        assert gone is not None and gone.removed_at is not None  # kept for the orders it paid
        stripe_id = gone.stripe_payment_method_id
        actions = list(s.scalars(select(BillingAuditEntry.action).order_by(BillingAuditEntry.id)))
        steps = list(s.scalars(select(FunnelEventRow.step)))
    assert localstripe.sdk.v1.payment_methods.retrieve(stripe_id).customer is None  # detached at Stripe
    assert actions == ["card_added", "card_added", "default_card_changed", "card_removed"]
    assert {"card_captured", "default_card_changed", "card_removed"} <= set(steps)
    # The renewal charges the new default.
    renewal = client.get(f"/namespaces/{GLOBEX}/subscription/renewal", headers=auth(ALICE)).json
    assert renewal["card"]["last4"] == "4242" and renewal["card"]["expired"] is False


def test_asking_for_the_default_moves_it(stripe_app: Flask, localstripe: LocalStripe) -> None:
    client = stripe_app.test_client()
    add_card(client, localstripe.url)
    second = add_card(client, localstripe.url, make_default=True)
    assert second.json["is_default"] is True
    assert [c["is_default"] for c in client.get(CARDS, headers=auth(ALICE)).json["cards"]] == [False, True]


def test_an_expired_default_is_marked_and_a_new_card_replaces_it(stripe_app: Flask,
                                                                 localstripe: LocalStripe) -> None:
    client = stripe_app.test_client()
    old = add_card(client, localstripe.url).json
    with Session(stripe_app.extensions["checkout"].ctx.engine) as s:
        card = s.get(PaymentMethod, old["id"])
        assert card is not None
        card.exp_month, card.exp_year = 10, 2026  # the clock says November 2026
        s.commit()
    [marked] = client.get(CARDS, headers=auth(ALICE)).json["cards"]
    assert (marked["expired"], marked["expiring"]) == (True, False)
    fresh = add_card(client, localstripe.url)
    assert fresh.json["is_default"] is True  # the default had expired: the new card takes over


@pytest.mark.parametrize("user", [BOB])
def test_members_who_do_not_manage_billing_can_not_add_cards(stripe_app: Flask, user: int) -> None:
    answer = stripe_app.test_client().post(f"/namespaces/{GLOBEX}/billing/card-setup", headers=auth(user))
    assert answer.status_code == 403 and answer.json["code"] == "billing_manager_required"


def test_the_renewal_applies_the_scheduled_seat_reduction(stripe_app: Flask, localstripe: LocalStripe,
                                                          clock: FixedClock) -> None:
    client = stripe_app.test_client()
    add_card(client, localstripe.url)
    scheduled = client.put(f"/namespaces/{GLOBEX}/subscription/scheduled-change", json={"seats": 4},
                           headers=auth(ALICE))
    assert scheduled.status_code == 200, scheduled.json
    checkout = stripe_app.extensions["checkout"]
    clock.set(datetime(2027, 1, 25, 0, 5, tzinfo=UTC))
    assert renewals.run_all(checkout, checkout.ctx.uow, checkout.renewal_rules)["renewed"] == 1
    with Session(checkout.ctx.engine) as s:
        sub = s.scalar(select(Subscription).where(Subscription.namespace_id == GLOBEX))
        change = s.scalar(select(ScheduledChange))
        renewed = [m.payload for m in s.scalars(select(OutboxMessage).where(
            OutboxMessage.topic == "subscription.renewed"))]
    assert sub is not None and (sub.seats, sub.term_end.isoformat()) == (4, "2028-01-25")
    assert change is not None and change.applied_at is not None
    assert [(p["amount"], p["seats"]) for p in renewed] == [(4 * 34800, 4)]
    # The next term starts with nothing scheduled.
    assert client.get(f"/namespaces/{GLOBEX}/billing", headers=auth(ALICE)).json["subscription"][
        "scheduled_change"] is None


def test_renew_now_from_thirty_days_before_the_end_is_tracked_and_audited(
        stripe_app: Flask, localstripe: LocalStripe, clock: FixedClock) -> None:
    client = stripe_app.test_client()
    add_card(client, localstripe.url)
    clock.set(datetime(2026, 12, 26, 9, 0, tzinfo=UTC))  # the term ends January 25, 2027
    summary = client.get(f"/namespaces/{GLOBEX}/billing", headers=auth(ALICE)).json["subscription"]
    assert summary["can_renew_now"] is True
    refused = client.post(f"/namespaces/{GLOBEX}/subscription/renewal", headers=auth(BOB))
    assert refused.status_code == 403 and refused.json["code"] == "billing_manager_required"
    renewed = client.post(f"/namespaces/{GLOBEX}/subscription/renewal", headers=auth(ALICE))
    assert renewed.status_code == 201, renewed.json
    assert renewed.json["amount"] == 174000 and renewed.json["subscription"]["term_end"] == "2028-01-25"
    with Session(stripe_app.extensions["checkout"].ctx.engine) as s:
        assert "renewed_now" in set(s.scalars(select(FunnelEventRow.step)))
        assert "renewed_now" in set(s.scalars(select(BillingAuditEntry.action)))


def test_a_move_to_premium_at_renewal_makes_guests_take_seats(stripe_app: Flask, localstripe: LocalStripe,
                                                                clock: FixedClock) -> None:
    client = stripe_app.test_client()
    add_card(client, localstripe.url)
    checkout = stripe_app.extensions["checkout"]
    with Session(checkout.ctx.engine) as s:  # globex on Ultimate, with a Guest who takes no seat there
        sub = s.scalar(select(Subscription).where(Subscription.namespace_id == GLOBEX))
        namespace = s.get(Namespace, GLOBEX)
        assert sub is not None and namespace is not None
        sub.plan = namespace.plan = "ultimate"
        s.add(User(id=77, email="guest@globex.test", name="Guest"))
        s.add(Membership(namespace_id=GLOBEX, user_id=77, role="guest", billable=False))
        s.commit()
    scheduled = client.put(f"/namespaces/{GLOBEX}/subscription/scheduled-change", json={"plan": "premium"},
                           headers=auth(ALICE))
    assert scheduled.status_code == 200, scheduled.json
    clock.set(datetime(2027, 1, 25, 0, 5, tzinfo=UTC))
    assert renewals.run_all(checkout, checkout.ctx.uow, checkout.renewal_rules)["renewed"] == 1
    with Session(checkout.ctx.engine) as s:
        guest = s.get(Membership, (GLOBEX, 77))
        assert guest is not None and guest.billable is True  # Premium counts Guests
        assert s.scalar(select(SeatHolding).where(SeatHolding.user_id == 77, SeatHolding.left_at.is_(None)))
    seats = client.get(f"/namespaces/{GLOBEX}/seats", headers=auth(ALICE)).json
    assert (seats["plan"], seats["seats_in_use"]) == ("premium", 5)
