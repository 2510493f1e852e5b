"""Seats as the platform sees them, on SQLite and PostgreSQL: seats in use and
the max used kept from member hooks, who held a seat when, the usage series,
Guests on Ultimate, and the max starting again with a new term."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.checkout.adapters.models import Namespace, SeatHolding, Subscription
from services.checkout.usecases import seats
from tests.integration.test_directory_api import member, send, sent
from tests.support import auth

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
