"""Trials answers eligibility from its own read model of checkout's namespaces
(services/trials/usecases/directory.py): it follows the platform's changes
within the stated bound, keeps the later of two changes whatever order they
come in, and never asks checkout to answer."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, cast

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.checkout.adapters.models import OutboxMessage
from services.common.auth import service_token
from services.common.relay import envelope
from services.trials.usecases.directory import STALENESS_BOUND
from tests.conftest import relay_to_trials, relaying
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
