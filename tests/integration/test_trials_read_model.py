"""Trials answers eligibility from its own read model of checkout's namespaces
(services/trials/usecases/directory.py): it follows the platform's changes
within the stated bound, keeps the later of two changes whatever order they
come in, and never asks checkout to answer."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, cast

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from identity.auth import service_token
from messaging.inbox import receive
from messaging.relay import envelope
from services.checkout.adapters.models import OutboxMessage
from services.trials.adapters.models import InboxEvent
from services.trials.usecases.directory import STALENESS_BOUND, lookup, memberships
from services.trials.usecases.events import handlers
from tests.conftest import NOW, relay_to_trials, relaying
from tests.support import LiveServer, auth

HOOKS = "/internal/directory/hooks"
PLATFORM = {"X-Gitlab-Event": "System Hook", **auth(0, roles=("service",))}
ALICE, BOB, FRANK, SUPPORT = 1, 2, 5, 9
GLOBEX = 200
# After the seed's hooks (the fixtures' clock, 2026-11-21 12:00).
T1, T2 = "2026-11-22T10:00:00Z", "2026-11-22T11:00:00Z"


def role_hook(user_id: int, access: str, at: str, group_id: int = GLOBEX) -> dict[str, Any]:
    return {"event_name": "user_update_for_group", "created_at": "2026-11-20T10:00:00Z", "updated_at": at,
            "group_id": group_id, "group_name": "Globex Inc", "group_path": "globex", "user_id": user_id,
            "user_username": f"u{user_id}", "user_name": "Alice Owner", "user_email": "alice@acme.test",
            "group_access": access}


def ultimate(trials: FlaskClient, user: int = ALICE) -> dict[str, Any]:
    response = trials.get(f"/namespaces/{GLOBEX}/trials/eligibility", headers=auth(user))
    assert response.status_code == 200, response.json
    verdicts: list[dict[str, Any]] = response.get_json()
    return next(v for v in verdicts if v["kind"] == "ultimate")


@pytest.fixture
def stack(app: Flask, trials_server_app: tuple[Flask, LiveServer]) -> tuple[FlaskClient, FlaskClient, str]:
    """(checkout's client, trials' client, trials' URL), trials' read model fed."""
    trials, server = trials_server_app
    return app.test_client(), trials.test_client(), server.url


@pytest.fixture
def relay_loop(app: Flask, stack: tuple[FlaskClient, FlaskClient, str]) -> Iterator[float]:
    """Checkout's relay to trials running as its worker runs it; yields its interval."""
    with relaying(app, stack[2]) as interval:
        yield interval


def test_a_demoted_owner_loses_eligibility_within_the_staleness_bound(
        stack: tuple[FlaskClient, FlaskClient, str], relay_loop: float) -> None:
    checkout, trials, _ = stack
    assert ultimate(trials)["eligible"]
    hooked = time.monotonic()
    demoted = checkout.post(HOOKS, json=role_hook(ALICE, "Developer", T1), headers=PLATFORM)
    assert demoted.status_code == 200 and demoted.get_json()["events"] == ["directory.member_updated"]
    while (verdict := ultimate(trials))["eligible"] and time.monotonic() - hooked < 3 * STALENESS_BOUND.seconds:
        time.sleep(0.02)
    took = time.monotonic() - hooked
    print(f"eligibility followed the demotion in {took:.3f} s (relay interval {relay_loop} s, "
          f"bound {STALENESS_BOUND.total_seconds()} s)")
    assert (verdict["eligible"], verdict["reason"]) == (False, "not_owner")
    assert took <= STALENESS_BOUND.total_seconds()


def _pending(app: Flask) -> list[OutboxMessage]:
    with Session(app.extensions["checkout"].ctx.engine) as s:
        return list(s.scalars(select(OutboxMessage).where(OutboxMessage.published_at.is_(None))
                              .order_by(OutboxMessage.occurred_at)))


def test_an_older_member_event_does_not_undo_a_newer_one(app: Flask,
                                                        stack: tuple[FlaskClient, FlaskClient, str]) -> None:
    checkout, trials, trials_url = stack
    checkout.post(HOOKS, json=role_hook(ALICE, "Developer", T1), headers=PLATFORM)
    checkout.post(HOOKS, json=role_hook(ALICE, "Owner", T2), headers=PLATFORM)
    older, newer = sorted(_pending(app), key=lambda row: row.payload["changed_at"])
    assert (older.payload["role"], newer.payload["role"]) == ("developer", "owner")
    token = service_token(app.extensions["checkout"].ctx.settings, "trials")
    for row in (newer, older):  # the newer change reaches trials first
        response = requests.post(f"{trials_url}/internal/events", json=cast(dict[str, Any], envelope(row, "checkout")),
                                 headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert response.status_code == 200, response.text
    assert response.json()["outcome"].endswith("(stale)")
    assert ultimate(trials)["eligible"]  # still the Owner the platform said last
    assert relay_to_trials(app, trials_url) == 2  # the relay's own delivery: duplicates, nothing changes
    assert ultimate(trials)["eligible"]


def test_eligibility_asks_checkout_nothing_and_keeps_checkouts_visibility(
        stack: tuple[FlaskClient, FlaskClient, str], trials_app: Flask) -> None:
    _, trials, _ = stack

    class Unreachable:
        def lookup(self, namespace_id: int, bearer_token: str) -> None:
            raise AssertionError("eligibility called checkout")

    trials_app.extensions["trials"].directory = Unreachable()
    assert ultimate(trials)["eligible"]
    assert ultimate(trials, BOB)["reason"] == "not_owner"
    # Support (admin) sees every namespace, as in checkout, with no role of its own.
    admin = trials.get(f"/namespaces/{GLOBEX}/trials/eligibility", headers=auth(SUPPORT, roles=("admin",)))
    assert admin.status_code == 200 and {v["reason"] for v in admin.get_json()} == {"not_owner"}
    for path in (f"/namespaces/{GLOBEX}/trials/eligibility", f"/namespaces/{GLOBEX}/trials",
                 "/namespaces/999999/trials/eligibility"):
        response = trials.get(path, headers=auth(FRANK))
        assert response.status_code == 404 and response.get_json()["code"] == "namespace_not_found"


def _deliver(trials_app: Flask, topic: str, payload: dict[str, Any]) -> str:
    app = trials_app.extensions["trials"]
    event = {"id": str(uuid.uuid4()), "topic": topic, "source": "checkout", "occurred_at": NOW.isoformat(),
             "payload": payload}
    with app.ctx.uow() as uow:
        return receive(uow, InboxEvent, event, handlers(app))


def _globex(trials_app: Flask, user: int = ALICE) -> Any:
    with Session(trials_app.extensions["trials"].ctx.engine) as s:
        return lookup(s, GLOBEX, user, False)


def test_an_upgrade_to_ultimate_stops_guests_counting_and_an_older_snapshot_undoes_nothing(
        trials_app: Flask) -> None:
    carol = {"group_id": GLOBEX, "user_id": 3, "changed_at": T1, "role": "guest", "billable": True,
             "previous_role": "developer"}
    assert _deliver(trials_app, "directory.member_updated", carol) == "member_updated: user 3 in 200"
    assert _globex(trials_app).billable_members == 4  # a Guest on Premium takes a seat
    upgraded = {"subscription_id": 1, "namespace_id": GLOBEX, "namespace_path": "globex", "plan": "ultimate",
                "seats": 5, "addons": [{"sku": "duo_pro", "seats": 5}], "features": [], "plan_before": "premium",
                "changed_at": (NOW + timedelta(hours=1)).isoformat()}
    _deliver(trials_app, "subscription.upgraded", upgraded)
    ns = _globex(trials_app)
    assert (ns.plan, ns.billable_members, ns.addons_purchased) == ("ultimate", 3, ("duo_pro",))
    # A snapshot taken before the upgrade (and before Carol's change) arrives late: nothing goes back.
    stale = {"namespace_id": GLOBEX, "path": "globex", "kind": "group", "parent_id": None, "destroyed": False,
             "changed_at": NOW.isoformat(), "last_event": "group_created", "plan": "premium", "addons": {},
             "plan_changed_at": NOW.isoformat(),
             "members": [{"user_id": 3, "role": "developer", "changed_at": NOW.isoformat(),
                          "last_event": "member_added"}]}
    _deliver(trials_app, "directory.namespace_snapshot", stale)
    ns = _globex(trials_app)
    assert (ns.plan, ns.billable_members, ns.addons_purchased) == ("ultimate", 3, ("duo_pro",))
    assert _globex(trials_app, 3).role == "guest"
    # Expiry returns the namespace to Free: Guests take a seat again.
    expired = {"subscription_id": 1, "namespace_id": GLOBEX, "namespace_path": "globex",
               "email": "billing@acme.test", "plan": "ultimate", "term_end": "2027-11-21",
               "changed_at": (NOW + timedelta(days=400)).isoformat()}
    _deliver(trials_app, "subscription.expired", expired)
    assert (_globex(trials_app).plan, _globex(trials_app).billable_members) == ("free", 4)


def test_a_renamed_group_moves_its_subgroups_and_a_destroyed_one_is_nobodys(trials_app: Flask) -> None:
    renamed = {"group_id": 100, "name": "Acme Corp", "path": "acme-corp", "old_path": "acme", "changed_at": T1}
    _deliver(trials_app, "directory.group_renamed", renamed)
    with Session(trials_app.extensions["trials"].ctx.engine) as s:
        assert [m.path for m in memberships(s, ALICE)] == ["acme-corp", "acme-corp/backend", "globex"]
    _deliver(trials_app, "directory.group_destroyed", {"group_id": 100, "path": "acme-corp", "changed_at": T2})
    _deliver(trials_app, "directory.member_added", {"group_id": 100, "user_id": ALICE, "role": "owner",
                                                    "billable": True, "changed_at": T1})  # late: stays gone
    with Session(trials_app.extensions["trials"].ctx.engine) as s:
        assert [m.path for m in memberships(s, ALICE)] == ["acme-corp/backend", "globex"]
        assert lookup(s, 100, ALICE, False) is None


def test_a_purchase_heard_before_its_group_is_kept(trials_app: Flask) -> None:
    """Events of one instant go out in no set order: the group may come after its purchase."""
    bought = {"subscription_id": 5, "namespace_id": 900, "namespace_path": "initech", "plan": "premium",
              "seats": 2, "addons": [], "features": [], "changed_at": NOW.isoformat()}
    _deliver(trials_app, "subscription.created", bought)
    _deliver(trials_app, "directory.member_added", {"group_id": 900, "user_id": ALICE, "role": "owner",
                                                    "billable": True, "changed_at": T1})
    _deliver(trials_app, "directory.group_created", {"group_id": 900, "name": "Initech", "path": "initech",
                                                     "parent_id": None, "changed_at": T1})
    with Session(trials_app.extensions["trials"].ctx.engine) as s:
        ns = lookup(s, 900, ALICE, False)
    assert ns is not None and (ns.path, ns.plan, ns.role, ns.billable_members) == ("initech", "premium", "owner", 1)
