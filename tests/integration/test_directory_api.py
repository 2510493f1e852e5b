"""The platform's directory hooks on SQLite and PostgreSQL: every hook changes
what members see, once, whatever order or how often the hooks arrive."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.checkout.adapters.models import InboxEvent, Namespace, OutboxMessage, User
from tests.support import LiveServer, auth, token

HOOKS = "/internal/directory/hooks"
PLATFORM = auth(0, roles=("service",))
ALICE, ACME, ACME_SUB = 1, 100, 101
NEWCO, NEWCO_WEB, OWNER, DEV = 700, 701, 70, 71
T0, T1, T2 = "2026-11-20T10:00:00Z", "2026-11-20T11:00:00Z", "2026-11-20T12:00:00Z"
LATER = "2026-11-22T10:00:00Z"  # after the seed's hooks (the fixture's clock)


def group(event: str, group_id: int = NEWCO, path: str = "newco", at: str = T0, **extra: Any) -> dict[str, Any]:
    return {"event_name": event, "created_at": T0, "updated_at": at, "group_id": group_id,
            "name": path.rsplit("/", 1)[-1].capitalize(), "path": path.rsplit("/", 1)[-1],
            "full_path": path, "owner_email": None, "owner_name": None, **extra}


def member(event: str, user_id: int = OWNER, access: str = "Owner", at: str = T0,
           group_id: int = NEWCO) -> dict[str, Any]:
    return {"event_name": event, "created_at": T0, "updated_at": at, "group_id": group_id,
            "group_name": "Newco", "group_path": "newco", "user_id": user_id, "user_username": f"u{user_id}",
            "user_name": f"User {user_id}", "user_email": f"u{user_id}@newco.test", "group_access": access,
            "expires_at": None, "group_plan": None}


def send(client: FlaskClient, body: Any, event_id: str | None = None, headers: dict[str, str] | None = None
         ) -> Any:
    ids = {"X-Gitlab-Event-UUID": event_id} if event_id else {}
    return client.post(HOOKS, json=body, headers={"X-Gitlab-Event": "System Hook", **PLATFORM, **ids,
                                                  **(headers or {})})


def sent(client: FlaskClient, *bodies: dict[str, Any]) -> list[str]:
    outcomes = []
    for body in bodies:
        response = send(client, body)
        assert response.status_code == 200, response.json
        outcomes.append(response.json["outcome"])
    return outcomes


def seen_by(client: FlaskClient, user: int, namespace: int) -> Any:
    return client.get(f"/namespaces/{namespace}", headers=auth(user))


def events(app: Flask) -> list[tuple[str, dict[str, Any]]]:
    """The events published since the seed (the fixture relayed the seed's), in
    the platform's order."""
    with Session(app.extensions["checkout"].ctx.engine) as s:
        rows = s.scalars(select(OutboxMessage).where(OutboxMessage.published_at.is_(None))).all()
        # Every event carries the request id that caused it; that is tested elsewhere.
        found = [(r.topic, {k: v for k, v in r.payload.items() if k != "request_id"}) for r in rows]
    return sorted(found, key=lambda e: (e[1]["changed_at"], e[0]))


def topics(app: Flask) -> list[str]:
    return [topic for topic, _ in events(app)]


# --- each hook ------------------------------------------------------------------------
def test_a_created_group_and_its_owner_can_buy(client: FlaskClient, app: Flask) -> None:
    assert seen_by(client, OWNER, NEWCO).status_code == 404
    created = send(client, group("group_create"))
    assert created.status_code == 200 and created.json["events"] == ["directory.group_created"]
    added = send(client, member("user_add_to_group"))
    assert added.json["events"] == ["directory.member_added"]

    ns = seen_by(client, OWNER, NEWCO).json
    assert (ns["path"], ns["name"], ns["kind"], ns["parent_id"], ns["plan"], ns["role"], ns["billable_members"]) \
        == ("newco", "Newco", "group", None, "free", "owner", 1)
    quote = client.post("/quotes", json={"namespace_id": NEWCO, "plan": "premium", "seats": 1},
                        headers=auth(OWNER))
    assert quote.status_code == 200
    with Session(app.extensions["checkout"].ctx.engine) as s:
        user = s.get(User, OWNER)
        assert user is not None and (user.email, user.name) == ("u70@newco.test", "User 70")
    [(_, made), (_, joined)] = events(app)
    assert made == {"group_id": NEWCO, "name": "Newco", "path": "newco", "parent_id": None,
                    "changed_at": "2026-11-20T10:00:00+00:00", "traffic": "real"}
    assert joined["role"] == "owner" and joined["billable"] is True and joined["user_id"] == OWNER


def test_a_subgroup_sits_under_its_parent(client: FlaskClient) -> None:
    sent(client, group("group_create"), member("user_add_to_group"),
         group("group_create", NEWCO_WEB, "newco/web", parent_id=NEWCO),
         member("user_add_to_group", group_id=NEWCO_WEB))
    web = seen_by(client, OWNER, NEWCO_WEB).json
    assert (web["path"], web["parent_id"], web["role"]) == ("newco/web", NEWCO, "owner")
    # A subgroup can not be bought for: it is not a top-level group.
    quote = client.post("/quotes", json={"namespace_id": NEWCO_WEB, "plan": "premium", "seats": 1},
                        headers=auth(OWNER))
    assert quote.status_code == 422 and quote.json["code"] == "not_top_level"


def test_a_role_update_changes_the_role_and_who_is_billable(client: FlaskClient, app: Flask) -> None:
    sent(client, group("group_create"), member("user_add_to_group"),
         member("user_add_to_group", DEV, "Developer"))
    with Session(app.extensions["checkout"].ctx.engine) as s:  # as a purchase of Ultimate leaves it
        s.get(Namespace, NEWCO).plan = "ultimate"  # type: ignore[union-attr]
        s.commit()
    assert seen_by(client, OWNER, NEWCO).json["billable_members"] == 2

    updated = send(client, member("user_update_for_group", DEV, "Guest", at=T1))
    assert updated.json["events"] == ["directory.member_updated"]
    assert seen_by(client, DEV, NEWCO).json["role"] == "guest"
    assert seen_by(client, OWNER, NEWCO).json["billable_members"] == 1  # Guests on Ultimate take no seat
    topic, payload = events(app)[-1]
    assert (payload["role"], payload["previous_role"], payload["billable"]) == ("guest", "developer", False)

    send(client, member("user_update_for_group", DEV, "Reporter", at=T2))
    assert seen_by(client, OWNER, NEWCO).json["billable_members"] == 2


def test_a_removed_member_no_longer_sees_the_group(client: FlaskClient, app: Flask) -> None:
    sent(client, group("group_create"), member("user_add_to_group"), member("user_add_to_group", DEV, "Developer"))
    removed = send(client, member("user_remove_from_group", DEV, "Developer", at=T1))
    assert removed.json["events"] == ["directory.member_removed"]
    assert seen_by(client, DEV, NEWCO).status_code == 404
    assert seen_by(client, OWNER, NEWCO).json["billable_members"] == 1
    assert events(app)[-1][1]["user_id"] == DEV


def test_a_destroyed_group_is_gone_for_its_members_and_stays_gone(client: FlaskClient, app: Flask) -> None:
    sent(client, group("group_create"), member("user_add_to_group"))
    destroyed = send(client, group("group_destroy", at=T1))
    assert destroyed.json["events"] == ["directory.group_destroyed"]
    assert seen_by(client, OWNER, NEWCO).status_code == 404
    assert client.get("/namespaces", headers=auth(OWNER)).json == []
    # Late hooks about it change nothing, whatever their time.
    late = sent(client, member("user_add_to_group", DEV, "Developer", at=T2), group("group_create", at=T2),
                group("group_rename", path="newco2", at=T2))
    assert all(outcome.startswith("ignored") for outcome in late), late
    assert seen_by(client, DEV, NEWCO).status_code == 404 and seen_by(client, OWNER, NEWCO).status_code == 404
    assert topics(app) == ["directory.group_created", "directory.member_added", "directory.group_destroyed"]


def test_a_renamed_group_and_its_subgroups_take_the_new_path(client: FlaskClient, app: Flask) -> None:
    renamed = send(client, group("group_rename", ACME, "acme-corp", at=LATER, old_path="acme",
                                 old_full_path="acme"))
    assert renamed.json["events"] == ["directory.group_renamed"]
    assert seen_by(client, ALICE, ACME).json["path"] == "acme-corp"
    assert seen_by(client, ALICE, ACME_SUB).json["path"] == "acme-corp/backend"
    assert events(app)[-1][1] | {"changed_at": None} == {
        "group_id": ACME, "name": "Acme-corp", "path": "acme-corp", "old_path": "acme", "changed_at": None,
        "traffic": "real"}


def test_a_new_group_may_take_the_path_of_one_that_moved(client: FlaskClient) -> None:
    """Paths are unique at any moment on the platform, but the hook saying acme
    moved away may come after the one giving its old path to another group."""
    sent(client, group("group_create", path="acme"), member("user_add_to_group"))
    assert seen_by(client, OWNER, NEWCO).json["path"] == "acme"
    send(client, group("group_rename", ACME, "acme-corp", at=LATER))
    assert seen_by(client, ALICE, ACME).json["path"] == "acme-corp"


# --- duplicates and order ----------------------------------------------------------
def test_the_same_hook_twice_is_one_change_and_one_event(client: FlaskClient, app: Flask) -> None:
    sent(client, group("group_create"))
    hook_id = str(uuid.uuid4())
    first = send(client, member("user_add_to_group"), event_id=hook_id)
    again = send(client, member("user_add_to_group"), event_id=hook_id)
    assert first.json["event_id"] == again.json["event_id"] == hook_id
    assert again.json == {"event_id": hook_id, "outcome": "duplicate", "events": []}
    # Without the platform's id, the body's hash is the id.
    body = member("user_add_to_group", DEV, "Developer")
    ids = {send(client, body).json["event_id"], send(client, body).json["event_id"]}
    assert len(ids) == 1
    assert topics(app) == ["directory.group_created", "directory.member_added", "directory.member_added"]
    assert seen_by(client, OWNER, NEWCO).json["billable_members"] == 2


def test_an_older_update_after_a_newer_one_is_ignored(client: FlaskClient, app: Flask) -> None:
    sent(client, group("group_create"), member("user_add_to_group"))
    assert sent(client, member("user_update_for_group", DEV, "Maintainer", at=T2)) == [
        f"added: user {DEV} in group {NEWCO} as maintainer"]
    late = sent(client, member("user_update_for_group", DEV, "Reporter", at=T1),
                member("user_add_to_group", DEV, "Developer", at=T0))
    assert all(outcome.startswith("stale") for outcome in late), late
    assert seen_by(client, DEV, NEWCO).json["role"] == "maintainer"
    assert topics(app).count("directory.member_added") == 2 and "directory.member_updated" not in topics(app)


@pytest.mark.parametrize("late_add_at", [T0, T1], ids=["older", "same-second"])
def test_a_late_add_after_a_remove_does_not_bring_the_member_back(client: FlaskClient, app: Flask,
                                                                  late_add_at: str) -> None:
    sent(client, group("group_create"), member("user_add_to_group"))
    removed = sent(client, member("user_remove_from_group", DEV, "Developer", at=T1))
    assert removed == [f"unchanged: user {DEV} in group {NEWCO}"]  # never heard of: nothing to remove
    late = sent(client, member("user_add_to_group", DEV, "Developer", at=late_add_at))
    assert late[0].startswith("stale"), late
    assert seen_by(client, DEV, NEWCO).status_code == 404
    assert "directory.member_added" not in [t for t, p in events(app) if p.get("user_id") == DEV]
    # A later add (the platform re-added them) does.
    assert sent(client, member("user_add_to_group", DEV, "Developer", at=T2))[0].startswith("added")
    assert seen_by(client, DEV, NEWCO).json["role"] == "developer"


def test_members_and_subgroups_heard_before_their_group_wait_for_it(client: FlaskClient, app: Flask) -> None:
    waiting = sent(client, member("user_add_to_group", DEV, "Developer", group_id=NEWCO_WEB),
                   group("group_create", NEWCO_WEB, "newco/web", parent_id=NEWCO),
                   member("user_add_to_group"))
    assert "waits" in waiting[0] and "waits" in waiting[1], waiting
    assert seen_by(client, DEV, NEWCO_WEB).status_code == 404  # not a top-level group by mistake
    send(client, group("group_create"))
    assert seen_by(client, OWNER, NEWCO).json["role"] == "owner"
    web = seen_by(client, DEV, NEWCO_WEB).json
    assert (web["parent_id"], web["path"], web["role"]) == (NEWCO, "newco/web", "developer")


def test_a_rename_heard_before_the_create_keeps_the_newer_name(client: FlaskClient) -> None:
    sent(client, group("group_rename", NEWCO, "newco-inc", at=T1), member("user_add_to_group"))
    assert seen_by(client, OWNER, NEWCO).status_code == 404  # where it sits is not known yet
    sent(client, group("group_create", NEWCO, "newco", at=T0))
    assert seen_by(client, OWNER, NEWCO).json["path"] == "newco-inc"


# --- refusals ----------------------------------------------------------------------
def platform_hooks(app: Flask) -> int:
    with Session(app.extensions["checkout"].ctx.engine) as s:
        return len(s.scalars(select(InboxEvent.event_id).where(InboxEvent.source == "platform")).all())


def refused(app: Flask, send: Callable[[], Any], status: int, code: str) -> dict[str, Any]:
    before = platform_hooks(app)
    response = send()
    assert response.status_code == status, response.json
    assert response.mimetype == "application/problem+json" and response.json["code"] == code
    assert platform_hooks(app) == before and events(app) == []  # nothing half-written
    return dict(response.json)


@pytest.mark.parametrize("body, field", [
    ({k: v for k, v in member("user_add_to_group").items() if k != "user_email"}, "user_email"),
    (member("user_add_to_group", access="Admin"), "group_access"),
    (member("user_add_to_group") | {"user_email": "not-an-email"}, "user_email"),
    (member("user_add_to_group") | {"created_at": "2026-11-20T10:00:00"}, "created_at"),  # no zone
    (member("user_add_to_group") | {"user_id": "70"}, "user_id"),
    (member("user_add_to_group") | {"group_id": 0}, "group_id"),
    (group("group_create") | {"path": ""}, "path"),
    (group("group_create") | {"name": "a\nb"}, "name"),
    ({"group_id": NEWCO}, "event_name"),
], ids=["no email", "unknown access", "bad email", "naive time", "id as text", "id zero", "empty path",
        "control character", "no event name"])
def test_a_bad_hook_is_refused_with_the_field_and_changes_nothing(client: FlaskClient, app: Flask,
                                                                  body: dict[str, Any], field: str) -> None:
    problem = refused(app, lambda: send(client, body), 422, "validation_failed")
    assert field in problem["errors"]["json"], problem


def test_not_json_or_a_bad_event_id_is_refused(client: FlaskClient, app: Flask) -> None:
    refused(app, lambda: client.post(HOOKS, data=b"{not json",
                                     headers={**PLATFORM, "Content-Type": "application/json"}),
            400, "malformed_json")
    refused(app, lambda: send(client, [member("user_add_to_group")]), 422, "validation_failed")
    refused(app, lambda: send(client, member("user_add_to_group"), event_id="x" * 37), 400, "invalid_event_id")


def test_other_system_hooks_are_answered_and_ignored(client: FlaskClient, app: Flask) -> None:
    response = send(client, {"event_name": "project_create", "created_at": T0, "project_id": 5})
    assert response.status_code == 200 and response.json["outcome"] == "ignored: not a directory event"
    assert events(app) == []


def test_only_a_service_may_send_hooks(client: FlaskClient, app: Flask) -> None:
    anonymous = client.post(HOOKS, json=group("group_create"))
    assert anonymous.status_code == 401 and anonymous.json["code"] == "unauthenticated"
    for roles in ((), ("admin",), ("synthetic",)):
        user = client.post(HOOKS, json=group("group_create"), headers=auth(ALICE, roles=roles))
        assert user.status_code == 403 and user.json["code"] == "service_only"
    assert events(app) == []


def test_a_synthetic_platform_marks_its_events_synthetic(client: FlaskClient, app: Flask) -> None:
    """Load tests feed the directory too; what they cause stays out of any analysis."""
    loadtest = {"Authorization": f"Bearer {token(0, roles=('service', 'synthetic'))}",
                "X-Traffic-Source": "synthetic"}
    client.post(HOOKS, json=group("group_create"), headers=loadtest)
    assert [p["traffic"] for _, p in events(app)] == ["synthetic"]


# --- concurrency ---------------------------------------------------------------------
def test_the_same_hook_delivered_at_once_is_applied_once(postgres_only: None, app: Flask) -> None:
    server = LiveServer(app)
    try:
        requests.post(f"{server.url}{HOOKS}", json=group("group_create"), headers=PLATFORM, timeout=10)
        hook_id = str(uuid.uuid4())

        def deliver(body: dict[str, Any]) -> str:
            response = requests.post(f"{server.url}{HOOKS}", json=body, timeout=30,
                                     headers={**PLATFORM, "X-Gitlab-Event-UUID": hook_id})
            assert response.status_code == 200, response.text
            return str(response.json()["outcome"])

        with ThreadPoolExecutor(max_workers=8) as pool:
            outcomes = list(pool.map(deliver, [member("user_add_to_group")] * 8))
        # Different hooks about one new user, at once: one user row, both memberships.
        with ThreadPoolExecutor(max_workers=4) as pool:
            others = list(pool.map(lambda gid: requests.post(
                f"{server.url}{HOOKS}", json=member("user_add_to_group", DEV, "Developer") | {"group_id": gid},
                headers=PLATFORM, timeout=30).status_code, [NEWCO, ACME, ACME_SUB]))
    finally:
        server.stop()
    assert sorted(outcomes).count("duplicate") == 7, outcomes
    assert others == [200, 200, 200]
    assert topics(app).count("directory.member_added") == 4
    client = app.test_client()
    assert {n["id"] for n in client.get("/namespaces", headers=auth(DEV)).json} == {NEWCO, ACME, ACME_SUB}
