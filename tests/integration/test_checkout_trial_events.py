"""Checkout's read model of trials: out-of-order and repeated events settle on the newest state."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Flask

from messaging.inbox import receive
from services.checkout.adapters.models import InboxEvent
from services.checkout.usecases.trial_events import HANDLERS
from tests.support import auth


def trial_event(topic: str, version: int, status: str, ends_at: str = "2027-01-20T12:00:00+00:00") -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "topic": topic, "source": "trials", "occurred_at": "2026-11-21T12:00:00+00:00",
            "payload": {"namespace_id": 200, "kind": "ultimate", "status": status, "version": version,
                        "ends_at": ends_at, "grants_plan": "ultimate", "grants_addon": None, "seats": None,
                        "occurred_at": "2026-11-21T12:00:00+00:00"}}


def deliver(app: Flask, event: dict[str, Any]) -> str:
    with app.extensions["checkout"].ctx.uow() as uow:
        return receive(uow, InboxEvent, event, HANDLERS)


def plan(app: Flask) -> str:
    return app.test_client().get("/namespaces/200/entitlements", headers=auth(1)).json["plan"]


def test_newest_version_wins_whatever_the_arrival_order(app: Flask) -> None:
    assert deliver(app, trial_event("trial.expired", 2, "expired")).startswith("trial ultimate")
    assert deliver(app, trial_event("trial.started", 1, "active")).startswith("stale")
    assert plan(app) == "premium"
    deliver(app, trial_event("trial.reactivated", 3, "active", "2026-12-21T12:00:00+00:00"))
    assert plan(app) == "ultimate"


def test_an_ended_trial_stops_counting_at_its_end_time(app: Flask) -> None:
    deliver(app, trial_event("trial.started", 1, "active", ends_at="2026-11-21T11:00:00+00:00"))
    assert plan(app) == "premium"  # its end has passed, even before trial.expired arrives
