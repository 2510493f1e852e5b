"""Duo seat assignment on SQLite and PostgreSQL: one or many at once, all or
nothing, never above the seats purchased or granted by a trial; the trial's
starter holds a seat, leavers lose theirs, a lowered count cuts the newest;
and 50 concurrent requests for 10 free seats give exactly 10."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, time, timedelta
from typing import Any

import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from messaging.inbox import receive
from services.checkout.adapters.models import InboxEvent, OutboxMessage, Subscription, SubscriptionAddOn
from services.checkout.usecases import renewals
from services.checkout.usecases.trial_events import HANDLERS
from services.common.clock import FixedClock
from tests.integration.test_directory_api import sent
from tests.integration.test_seats_api import GLOBEX, joins
from tests.support import LiveServer, auth

ALICE, BOB = 1, 2
PLATFORM = auth(0, roles=("service",))
SEATS = f"/namespaces/{GLOBEX}/duo/duo_pro"


def buy_duo(app: Flask, seats: int, sku: str = "duo_pro") -> None:
    with Session(app.extensions["checkout"].ctx.engine) as s:
        sub = s.scalar(select(Subscription).where(Subscription.namespace_id == GLOBEX))
        assert sub is not None
        held = s.scalar(select(SubscriptionAddOn).where(SubscriptionAddOn.subscription_id == sub.id,
                                                        SubscriptionAddOn.sku == sku))
        if held is None:
            s.add(SubscriptionAddOn(subscription_id=sub.id, sku=sku, seats=seats))
        else:
            held.seats = seats
        s.commit()


def members(client: FlaskClient, users: range) -> None:
    sent(client, *(joins(u) for u in users))


def assign(client: FlaskClient, user_ids: list[int], user: int = ALICE, action: str = "assign") -> Any:
    return client.post(f"{SEATS}/{action}", json={"user_ids": user_ids}, headers=auth(user))


def holders(client: FlaskClient, query: str = "assigned=true") -> list[int]:
    return [m["user_id"] for m in client.get(f"{SEATS}/members?{query}", headers=auth(BOB)).json["members"]]


def test_assign_one_or_many_all_or_nothing(client: FlaskClient, app: Flask) -> None:
    buy_duo(app, 3)
    members(client, range(30, 33))
    one = assign(client, [2])
    assert one.status_code == 200 and one.json == {"namespace_id": GLOBEX, "sku": "duo_pro", "seats": 3,
                                                   "assigned": 1, "free": 2, "changed": [2]}
    refused = assign(client, [3, 4, 30])  # three more for two free seats: nobody
    assert refused.status_code == 409 and refused.json["code"] == "duo_seats_exhausted"
    assert refused.json["seats_free"] == 2 and "nobody was assigned" in refused.json["detail"]
    assert holders(client) == [2]
    assert assign(client, [2, 3, 4]).json["changed"] == [3, 4]  # 2 holds one already
    assert assign(client, [99]).json["code"] == "not_a_member"
    assert assign(client, [30], user=BOB).json["code"] == "not_owner"
    assert assign(client, list(range(1, 102))).json["code"] == "validation_failed"
    assert client.post(f"/namespaces/{GLOBEX}/duo/premium/assign", json={"user_ids": [2]},
                       headers=auth(ALICE)).json["code"] == "unknown_addon"
    assert assign(client, [3, 30], action="unassign").json["changed"] == [3]
    assert holders(client) == [2, 4]
    assert client.get(f"/namespaces/{GLOBEX}/seats", headers=auth(ALICE)).json["duo"][0] == {
        "sku": "duo_pro", "purchased": 3, "trial": 0, "assigned": 2}


def test_the_member_list_sorts_and_filters(client: FlaskClient, app: Flask) -> None:
    buy_duo(app, 5)
    assign(client, [3])
    listed = client.get(f"{SEATS}/members?sort=role", headers=auth(BOB)).json
    assert [m["role"] for m in listed["members"]] == ["owner", "maintainer", "developer", "developer"]
    assert holders(client, "sort=assigned")[0] == 3
    assert holders(client, "sort=name&order=desc") == [4, 3, 2, 1]  # Dave, Carol, Bob, Alice
    assert holders(client, "assigned=false&role=developer") == [4]
    assert holders(client, "search=CAROL") == [3]
    assert client.get(f"{SEATS}/members?sort=age", headers=auth(BOB)).status_code == 422


def test_entitlements_say_who_has_duo(client: FlaskClient, app: Flask) -> None:
    buy_duo(app, 1)
    assign(client, [3])
    path = f"/namespaces/{GLOBEX}/users/3/entitlements"
    said = client.get(path, headers=PLATFORM).json
    assert said == {"namespace_id": GLOBEX, "user_id": 3, "member": True, "role": "developer", "billable": True,
                    "duo": {"duo_pro": True, "duo_enterprise": False}}
    assert client.get(path, headers=auth(3)).json["duo"]["duo_pro"] is True
    assert client.get(path, headers=auth(4)).status_code == 403
    assert client.get(f"/namespaces/{GLOBEX}/users/4/entitlements", headers=PLATFORM).json["duo"]["duo_pro"] is False
    # A member who leaves loses the seat.
    sent(client, joins(3, at="2026-11-23T10:00:00Z", event="user_remove_from_group"))
    assert client.get(path, headers=PLATFORM).json == {
        "namespace_id": GLOBEX, "user_id": 3, "member": False, "role": None, "billable": False,
        "duo": {"duo_pro": False, "duo_enterprise": False}}


def trial(app: Flask, version: int, status: str, seats: int = 5, sku: str = "duo_pro") -> str:
    event = {"id": str(uuid.uuid4()), "topic": f"trial.{'started' if status == 'active' else status}",
             "source": "trials", "occurred_at": "2026-11-21T12:00:00+00:00",
             "payload": {"namespace_id": GLOBEX, "kind": sku, "status": status, "version": version,
                         "ends_at": "2027-01-20T12:00:00+00:00", "grants_plan": None, "grants_addon": sku,
                         "seats": seats, "seat_holder": BOB, "trial_id": 5,
                         "occurred_at": "2026-11-21T12:00:00+00:00"}}
    with app.extensions["checkout"].ctx.uow() as uow:
        return receive(uow, InboxEvent, event, HANDLERS)


def test_the_trial_starter_holds_a_seat_and_an_ended_trial_cuts_the_newest(client: FlaskClient,
                                                                          app: Flask, clock: FixedClock) -> None:
    trial(app, 1, "active")
    assert holders(client) == [BOB]
    for user in (3, 4, 1):  # assigned one after the other: Alice is the newest
        clock.advance(timedelta(minutes=1))
        assert assign(client, [user]).status_code == 200
    buy_duo(app, 2)  # converted with 2 seats bought: the trial's 5 go
    trial(app, 2, "converted")
    assert sorted(holders(client)) == [BOB, 3]  # the two oldest stay
    with Session(app.extensions["checkout"].ctx.engine) as s:
        notices = [m.payload for m in s.scalars(select(OutboxMessage).where(
            OutboxMessage.topic == "subscription.duo_seats_removed"))]
    assert [(n["email"], n["removed_user_ids"], n["seats"]) for n in notices] == [("alice@acme.test", [1, 4], 2)]


def test_assignments_survive_a_conversion_that_keeps_the_seats(client: FlaskClient, app: Flask) -> None:
    trial(app, 1, "active")
    assign(client, [3, 4])
    buy_duo(app, 5)
    trial(app, 2, "converted")
    assert sorted(holders(client)) == [BOB, 3, 4]


def test_a_hundred_members_in_one_request(client: FlaskClient, app: Flask) -> None:
    buy_duo(app, 100)
    members(client, range(1000, 1096))
    everyone = [1, 2, 3, 4, *range(1000, 1096)]
    done = assign(client, everyone)
    assert done.status_code == 200 and done.json["assigned"] == 100 and done.json["free"] == 0


def test_fifty_concurrent_assignments_for_ten_free_seats(app: Flask, postgres_only: None) -> None:
    buy_duo(app, 10)
    client = app.test_client()
    members(client, range(500, 550))
    server = LiveServer(app)
    try:
        def one(user: int) -> int:
            return requests.post(f"{server.url}{SEATS}/assign", json={"user_ids": [user]}, headers=auth(ALICE),
                                 timeout=30).status_code
        with ThreadPoolExecutor(50) as pool:
            codes = list(pool.map(one, range(500, 550)))
    finally:
        server.stop()
    assert sorted(codes) == [200] * 10 + [409] * 40
    assert len(holders(client)) == 10


def test_an_expired_subscription_takes_its_duo_seats_along(client: FlaskClient, app: Flask,
                                                           clock: FixedClock) -> None:
    buy_duo(app, 2)
    assign(client, [3, 4])
    checkout = app.extensions["checkout"]
    with Session(checkout.ctx.engine) as s:
        sub = s.scalar(select(Subscription).where(Subscription.namespace_id == GLOBEX))
        assert sub is not None
        clock.set(datetime.combine(sub.term_end + timedelta(days=15), time(1), tzinfo=UTC))
    assert renewals.expire_lapsed(checkout.ctx.uow, checkout.renewal_rules) == 1
    assert holders(client) == []
    assert client.get(f"/namespaces/{GLOBEX}/users/3/entitlements", headers=PLATFORM).json["duo"]["duo_pro"] is False
