"""Seats as the platform sees them, on SQLite and PostgreSQL: seats in use and
the max used kept from member hooks, who held a seat when, the usage series,
Guests on Ultimate, and the max starting again with a new term."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from typing import Any

import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.checkout.adapters.models import Namespace, SeatHolding, Subscription
from services.checkout.usecases import seats
from tests.integration.test_directory_api import HOOKS, PLATFORM, member, send, sent
from tests.support import LiveServer, auth

GLOBEX, ALICE, BOB = 200, 1, 2
ACME = 100
T1, T2, T3 = "2026-11-22T10:00:00Z", "2026-11-23T10:00:00Z", "2026-11-24T10:00:00Z"


def joins(user_id: int, at: str = T1, access: str = "Developer", event: str = "user_add_to_group",
          group_id: int = GLOBEX) -> dict[str, Any]:
    return {**member(event, user_id, access, at=at, group_id=group_id), "group_path": "globex"}


def seats_of(client: FlaskClient, namespace: int = GLOBEX, user: int = ALICE) -> dict[str, Any]:
    response = client.get(f"/namespaces/{namespace}/seats", headers=auth(user))
    assert response.status_code == 200, response.json
    return response.json  # type: ignore[no-any-return]


def numbers(body: dict[str, Any]) -> tuple[int, int, int, int]:
    return body["seats_bought"], body["seats_in_use"], body["max_seats_used"], body["seats_owed"]


def test_seat_usage_follows_member_hooks(client: FlaskClient) -> None:
    assert numbers(seats_of(client)) == (5, 4, 4, 0)
    sent(client, joins(30), joins(31, at=T2))
    assert numbers(seats_of(client)) == (5, 6, 6, 1)
    sent(client, joins(30, at=T3, event="user_remove_from_group"))
    assert numbers(seats_of(client)) == (5, 5, 6, 1)  # the max stays for the term

    holders = client.get(f"/namespaces/{GLOBEX}/seats/members", headers=auth(BOB)).json
    assert [h["user_id"] for h in holders] == [1, 2, 3, 4, 31]
    assert holders[-1]["seat_taken_at"] == "2026-11-23T10:00:00+00:00" and holders[-1]["name"] == "User 31"
    history = client.get(f"/namespaces/{GLOBEX}/seats/history", headers=auth(ALICE)).json
    left = [h for h in history if h["user_id"] == 30]
    assert left == [{"user_id": 30, "role": "developer", "seat_taken_at": "2026-11-22T10:00:00+00:00",
                     "left_at": "2026-11-24T10:00:00+00:00"}]

    usage = client.get(f"/namespaces/{GLOBEX}/seats/usage", headers=auth(ALICE)).json
    assert [p["seats_in_use"] for p in usage["points"]] == [0, 4, 5, 6, 5]
    assert usage["points"][-1]["at"] == "2026-11-24T10:00:00+00:00" and usage["max_seats_used"] == 6


def test_a_late_add_after_a_removal_takes_no_seat(client: FlaskClient) -> None:
    sent(client, joins(30, at=T1))
    assert sent(client, joins(30, at=T3, event="user_remove_from_group")) == ["removed: user 30 in group 200"]
    assert sent(client, joins(30, at=T2))[0].startswith("stale:")
    # The same hook twice is one change.
    assert send(client, joins(32, at=T2), event_id="seat-1").json["events"] == ["directory.member_added"]
    assert send(client, joins(32, at=T2), event_id="seat-1").json["outcome"] == "duplicate"
    assert numbers(seats_of(client)) == (5, 5, 6, 1)


def test_guests_on_ultimate_take_no_seat_even_after_the_plan_changes(client: FlaskClient, app: Flask) -> None:
    sent(client, joins(40, access="Guest"))
    assert seats_of(client)["seats_in_use"] == 5  # a Guest on Premium takes a seat
    engine = app.extensions["checkout"].ctx.engine
    with Session(engine) as s:  # what completing an Ultimate upgrade does
        ns = s.get(Namespace, GLOBEX)
        assert ns is not None
        ns.plan = "ultimate"
        seats.reprice(s, ns, app.extensions["checkout"].ctx.clock.now() + timedelta(days=2))
        s.commit()
    assert seats_of(client)["seats_in_use"] == 4
    sent(client, joins(41, access="Guest", at=T2))
    assert seats_of(client)["seats_in_use"] == 4
    with Session(engine) as s:
        guest = s.scalar(select(SeatHolding).where(SeatHolding.user_id == 40))
        assert guest is not None and guest.left_at is not None


def test_the_max_starts_again_with_a_new_term(client: FlaskClient, app: Flask) -> None:
    sent(client, joins(30), joins(31), joins(30, at=T2, event="user_remove_from_group"),
         joins(31, at=T2, event="user_remove_from_group"))
    assert numbers(seats_of(client)) == (5, 4, 6, 1)
    with Session(app.extensions["checkout"].ctx.engine) as s:  # what a renewal does to the term
        sub = s.scalar(select(Subscription).where(Subscription.namespace_id == GLOBEX))
        assert sub is not None
        sub.term_start = date(2026, 12, 1)  # a term that starts after the removals
        s.commit()
    assert numbers(seats_of(client)) == (5, 4, 4, 0)


def test_members_only_see_seats(client: FlaskClient) -> None:
    assert client.get(f"/namespaces/{GLOBEX}/seats", headers=auth(5)).status_code == 404
    assert client.get(f"/namespaces/{GLOBEX}/seats/members").status_code == 401
    free = seats_of(client, ACME)
    assert numbers(free) == (0, 2, 2, 0) and free["term_start"] is None


def test_utilization_in_numbers_and_metrics(client: FlaskClient) -> None:
    sent(client, joins(30), joins(31), joins(32))
    body = seats_of(client)
    assert numbers(body) == (5, 7, 7, 2)
    assert body["duo"] == [{"sku": "duo_pro", "purchased": 0, "trial": 0, "assigned": 0},
                           {"sku": "duo_enterprise", "purchased": 0, "trial": 0, "assigned": 0}]
    assert (body["block_overages"], body["reconciliation_excluded"]) == (False, False)
    scraped = client.get("/metrics").get_data(as_text=True)
    assert "\nseats_bought 5.0\n" in scraped and "\nseats_in_use 7.0\n" in scraped
    assert "\nseats_owed 2.0\n" in scraped and "\nnamespaces_over_seats 1.0\n" in scraped


def starts_term(app: Flask, day: date) -> None:
    with Session(app.extensions["checkout"].ctx.engine) as s:
        sub = s.scalar(select(Subscription).where(Subscription.namespace_id == GLOBEX))
        assert sub is not None
        sub.term_start = day
        s.commit()


def preview(client: FlaskClient, user_ids: list[int], role: str = "developer", user: int = ALICE) -> Any:
    return client.post(f"/namespaces/{GLOBEX}/seats/preview", json={"user_ids": user_ids, "role": role},
                       headers=auth(user))


def test_the_preview_says_whether_seats_owed_rise_and_what_it_costs(client: FlaskClient, app: Flask) -> None:
    starts_term(app, date(2026, 10, 1))  # quarter 1 ends on January 1: 3 quarters left to pay
    within = preview(client, [30]).json
    assert (within["will_increase_overage"], within["new_seats"], within["amount"]) == (False, 1, 0)
    over = preview(client, [2, 30, 31, 32], user=BOB).json  # Bob is a member already
    assert over["new_seats"] == 3 and over["seats_in_use_after"] == 7
    assert (over["will_increase_overage"], over["additional_seats_owed"], over["seats_owed_after"]) == (True, 2, 2)
    assert over["amount"] == over["additional_amount"] == 2 * 34800 * 3 // 4
    assert over["reconciliation_date"] == "2027-01-01" and over["currency"] == "usd"
    guests = preview(client, [30, 31], role="guest").json  # Guests take a seat on Premium
    assert guests["takes_seat"] is True and guests["new_seats"] == 2
    # Nothing was written.
    assert seats_of(client)["seats_in_use"] == 4
    bad = preview(client, list(range(1, 102)))
    assert bad.status_code == 422 and bad.json["code"] == "validation_failed"
    assert preview(client, [30], role="admin").status_code == 422
    assert preview(client, [30], user=5).status_code == 404
    # The platform asks with its service token before adding members.
    platform = client.post(f"/namespaces/{GLOBEX}/seats/preview", json={"user_ids": [30, 31, 32], "role": "developer"},
                           headers=auth(0, roles=("service",)))
    assert platform.status_code == 200 and platform.json["amount"] == over["amount"]


def test_the_fourth_quarter_previews_no_charge(client: FlaskClient) -> None:
    late = preview(client, [30, 31, 32]).json  # the seeded term is in its fourth quarter
    assert late["will_increase_overage"] is True and late["amount"] == 0


def settings(client: FlaskClient, on: bool, user: int = ALICE) -> Any:
    return client.put(f"/namespaces/{GLOBEX}/seats/settings", json={"block_overages": on}, headers=auth(user))


def test_block_seat_overages_refuses_adds_past_the_paid_seats(client: FlaskClient, app: Flask) -> None:
    assert settings(client, True, user=BOB).json["code"] == "not_owner"
    assert settings(client, True).json == {"namespace_id": GLOBEX, "block_overages": True,
                                          "reconciliation_excluded": False}
    sent(client, joins(30))  # the fifth of five seats
    refused = send(client, joins(31, at=T2), event_id="add-31")
    assert refused.status_code == 409 and refused.json["code"] == "seat_overage_blocked"
    assert refused.json["detail"].startswith("globex uses 5 of its 5 paid seats and blocks seat overages")
    assert refused.json["seats"] == 5 and refused.json["seats_in_use"] == 5
    assert send(client, joins(31, at=T2), event_id="add-31").status_code == 409  # not recorded as handled
    assert client.get(f"/namespaces/{GLOBEX}", headers=auth(31)).status_code == 404
    # A role that takes no seat is always let in; promoting it to one that does is an add.
    with Session(app.extensions["checkout"].ctx.engine) as s:
        ns = s.get(Namespace, GLOBEX)
        assert ns is not None
        ns.plan = "ultimate"
        s.commit()
    sent(client, joins(40, access="Guest", at=T2))
    promoted = send(client, joins(40, access="Developer", at=T3, event="user_update_for_group"))
    assert promoted.status_code == 409 and promoted.json["code"] == "seat_overage_blocked"
    # Removing a member frees a seat for the next.
    sent(client, joins(30, at=T3, event="user_remove_from_group"))
    assert send(client, joins(31, at=T3), event_id="add-31").status_code == 200
    changes = client.get(f"/namespaces/{GLOBEX}/seats/settings/changes", headers=auth(BOB)).json
    assert [(c["setting"], c["value"], c["changed_by"]) for c in changes] == [("block_overages", True, ALICE)]


def test_turning_it_on_removes_nobody(client: FlaskClient) -> None:
    sent(client, joins(30), joins(31))
    assert settings(client, True).status_code == 200
    assert numbers(seats_of(client)) == (5, 6, 6, 1)
    assert send(client, joins(32, at=T2)).json["code"] == "seat_overage_blocked"
    assert settings(client, False).status_code == 200
    sent(client, joins(32, at=T2))
    assert seats_of(client)["seats_in_use"] == 7


def test_concurrent_adds_never_take_more_than_the_last_seat(app: Flask, postgres_only: None) -> None:
    client = app.test_client()
    assert settings(client, True).status_code == 200  # 4 of 5 seats used: one left
    server = LiveServer(app)
    try:
        def add(user: int) -> int:
            return requests.post(f"{server.url}{HOOKS}", json=joins(user), timeout=30, headers={
                "X-Gitlab-Event": "System Hook", **PLATFORM}).status_code
        with ThreadPoolExecutor(10) as pool:
            codes = list(pool.map(add, range(60, 70)))
    finally:
        server.stop()
    assert sorted(codes) == [200] + [409] * 9
    assert seats_of(client)["seats_in_use"] == 5
