"""The trials service over HTTP, with the real checkout as its namespace directory."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from messaging.inbox import receive
from services.common.clock import FixedClock
from services.trials.adapters.models import FunnelEventRow, InboxEvent, OutboxMessage, Trial, TrialAudit
from services.trials.app import create_app
from services.trials.usecases.events import handlers
from services.trials.usecases.trials import expire_due
from tests.conftest import NOW, trials_settings
from tests.support import auth

ALICE, BOB, FRANK = 1, 2, 5
ACME, ACME_SUB, GLOBEX = 100, 101, 200
SUPPORT = auth(9, roles=("admin",))


@pytest.fixture
def client(trials_app: Flask) -> FlaskClient:
    return trials_app.test_client()


def db(app: Flask) -> Session:
    return Session(app.extensions["trials"].ctx.engine)


def count(app: Flask, model: Any, *where: Any) -> int:
    with db(app) as s:
        return s.scalar(select(func.count()).select_from(model).where(*where)) or 0


def topics(app: Flask) -> list[str]:
    with db(app) as s:
        return list(s.scalars(select(OutboxMessage.topic).order_by(OutboxMessage.occurred_at)))


def eligibility(client: FlaskClient, ns: int, user: int = ALICE) -> dict[str, dict[str, Any]]:
    response = client.get(f"/namespaces/{ns}/trials/eligibility", headers=auth(user))
    assert response.status_code == 200, response.json
    return {v["kind"]: v for v in response.json}


def start(client: FlaskClient, ns: int, kind: str = "ultimate", user: int = ALICE) -> Any:
    return client.post(f"/namespaces/{ns}/trials", json={"kind": kind}, headers=auth(user))


def test_premium_owner_may_try_ultimate_for_60_days_and_duo_pro(client: FlaskClient, trials_app: Flask) -> None:
    verdicts = eligibility(client, GLOBEX)
    assert verdicts["ultimate"]["eligible"] and verdicts["ultimate"]["duration_days"] == 60
    assert verdicts["duo_pro"]["eligible"]
    assert (verdicts["duo_enterprise"]["eligible"], verdicts["duo_enterprise"]["reason"]) == (False, "plan_not_eligible")
    with db(trials_app) as s:
        [row] = s.scalars(select(FunnelEventRow)).all()
    assert row.step == "trial_eligibility_checked"
    assert row.properties["outcomes"] == {"ultimate": "eligible", "duo_pro": "eligible",
                                          "duo_enterprise": "plan_not_eligible"}


def test_free_namespace_gets_30_days(client: FlaskClient) -> None:
    verdicts = eligibility(client, ACME)
    assert verdicts["ultimate"]["duration_days"] == 30
    assert verdicts["duo_pro"]["reason"] == "plan_not_eligible"


@pytest.mark.parametrize("ns,user,reason", [(ACME_SUB, ALICE, "not_top_level"), (GLOBEX, BOB, "not_owner")])
def test_reasons_for_who_and_where(client: FlaskClient, ns: int, user: int, reason: str) -> None:
    assert eligibility(client, ns, user)["ultimate"]["reason"] == reason


def test_non_owner_and_subgroup_can_not_start_and_nothing_is_written(client: FlaskClient,
                                                                     trials_app: Flask) -> None:
    refused = start(client, GLOBEX, user=BOB)
    assert refused.status_code == 403 and refused.json["code"] == "not_owner"
    sub = start(client, ACME_SUB)
    assert sub.status_code == 422 and sub.json["code"] == "not_top_level"
    assert count(trials_app, Trial) == 0 and topics(trials_app) == []


def test_foreign_and_unknown_namespaces(client: FlaskClient) -> None:
    for response in (start(client, GLOBEX, user=FRANK), start(client, 999_999),
                     client.get(f"/namespaces/{GLOBEX}/trials", headers=auth(FRANK))):
        assert response.status_code == 404 and response.json["code"] == "namespace_not_found"


@pytest.mark.parametrize("body,status,code", [
    ({"kind": "platinum"}, 422, "unknown_trial_kind"),
    ({}, 422, "validation_failed"),
    ({"kind": "ultimate", "days": 900}, 422, "validation_failed"),
])
def test_bad_bodies(client: FlaskClient, trials_app: Flask, body: dict[str, Any], status: int, code: str) -> None:
    response = client.post(f"/namespaces/{GLOBEX}/trials", json=body, headers=auth(ALICE))
    assert (response.status_code, response.json["code"]) == (status, code)
    form = client.post(f"/namespaces/{GLOBEX}/trials", data="kind=ultimate", headers={
        **auth(ALICE), "Content-Type": "application/x-www-form-urlencoded"})
    assert form.status_code == 415
    assert count(trials_app, Trial) == 0


def test_start_is_idempotent_and_publishes_once(client: FlaskClient, trials_app: Flask) -> None:
    first = start(client, GLOBEX)
    assert first.status_code == 201, first.json
    trial = first.json
    assert (trial["status"], trial["plan_before"], trial["days_left"]) == ("active", "premium", 60)
    assert trial["ends_at"].startswith((NOW + timedelta(days=60)).date().isoformat())
    again = start(client, GLOBEX)
    assert again.status_code == 200 and again.json["id"] == trial["id"]
    assert topics(trial_app := trials_app) == ["trial.started"]
    assert eligibility(client, GLOBEX)["ultimate"]["reason"] == "trial_active"
    listed = client.get(f"/namespaces/{GLOBEX}/trials", headers=auth(BOB)).json  # members read
    assert [t["id"] for t in listed] == [trial["id"]]
    with db(trial_app) as s:
        steps = list(s.scalars(select(FunnelEventRow.step).order_by(FunnelEventRow.id)))
    assert steps.count("trial_started") == 1


def test_duo_trial_seats_follow_billable_members(client: FlaskClient) -> None:
    trial = start(client, GLOBEX, kind="duo_pro").json
    assert trial["seats"] == 4 and trial["days_left"] == 60


def test_expiry_happens_once_and_returns_the_namespace(client: FlaskClient, trials_app: Flask,
                                                       clock: FixedClock) -> None:
    trial = start(client, ACME).json
    app = trials_app.extensions["trials"]
    clock.advance(timedelta(days=29, hours=23))
    assert expire_due(app, app.ctx.uow) == []
    clock.advance(timedelta(hours=1))
    assert expire_due(app, app.ctx.uow) == [trial["id"]]
    assert expire_due(app, app.ctx.uow) == []  # a second sweep finds nothing
    assert topics(trials_app) == ["trial.started", "trial.expired"]
    [expired] = client.get(f"/namespaces/{ACME}/trials", headers=auth(ALICE)).json
    assert (expired["status"], expired["days_left"], expired["recently_expired"]) == ("expired", 0, True)
    assert eligibility(client, ACME)["ultimate"]["reason"] == "already_trialed"
    assert start(client, ACME).json["code"] == "already_trialed"


def test_support_extends_once_with_an_audit_record(client: FlaskClient, trials_app: Flask) -> None:
    trial = start(client, GLOBEX).json
    reason = {"reason": "Customer asked for time to finish a security review"}
    assert client.post(f"/trials/{trial['id']}/extend", json=reason, headers=auth(ALICE)).json["code"] \
        == "admin_required"
    extended = client.post(f"/trials/{trial['id']}/extend", json=reason, headers=SUPPORT)
    assert extended.status_code == 200 and extended.json["days_left"] == 90 and extended.json["extended"]
    twice = client.post(f"/trials/{trial['id']}/extend", json=reason, headers=SUPPORT)
    assert twice.status_code == 409 and twice.json["code"] == "already_extended"
    with db(trials_app) as s:
        [audit] = s.scalars(select(TrialAudit)).all()
    assert (audit.action, audit.actor_user_id, audit.reason) == ("extended", 9, reason["reason"])
    assert audit.ends_at_after - audit.ends_at_before == timedelta(days=30)
    assert topics(trials_app) == ["trial.started", "trial.extended"]
    with db(trials_app) as s:  # the experiments' "support extensions" guardrail
        assert s.scalars(select(FunnelEventRow.step).order_by(FunnelEventRow.id.desc())).first() == "trial_extended"


def test_support_reactivates_an_expired_trial_on_free_once(client: FlaskClient, trials_app: Flask,
                                                           clock: FixedClock) -> None:
    trial = start(client, ACME).json
    reason = {"reason": "Trial ran over the holidays"}
    early = client.post(f"/trials/{trial['id']}/reactivate", json=reason, headers=SUPPORT)
    assert early.status_code == 409 and early.json["code"] == "trial_not_expired"
    app = trials_app.extensions["trials"]
    clock.advance(timedelta(days=31))
    expire_due(app, app.ctx.uow)
    back = client.post(f"/trials/{trial['id']}/reactivate", json=reason, headers=SUPPORT)
    assert back.status_code == 200 and (back.json["status"], back.json["days_left"]) == ("active", 30)
    clock.advance(timedelta(days=31))
    expire_due(app, app.ctx.uow)
    again = client.post(f"/trials/{trial['id']}/reactivate", json=reason, headers=SUPPORT)
    assert again.json["code"] == "already_reactivated"
    assert client.post("/trials/999/extend", json=reason, headers=SUPPORT).json["code"] == "trial_not_found"
    short = client.post(f"/trials/{trial['id']}/extend", json={"reason": ""}, headers=SUPPORT)
    assert short.status_code == 422


def _subscription_event(namespace_id: int, plan: str, event_id: str = "evt-1") -> dict[str, Any]:
    return {"id": event_id, "topic": "subscription.created", "source": "checkout",
            "occurred_at": NOW.isoformat(),
            "payload": {"namespace_id": namespace_id, "plan": plan, "addons": [], "subscription_id": 7}}


def _deliver(app: Any, event: dict[str, Any]) -> str:
    with app.ctx.uow() as uow:
        return receive(uow, InboxEvent, event, handlers(app))


def test_buying_ultimate_converts_the_trial_once(client: FlaskClient, trials_app: Flask) -> None:
    trial = start(client, ACME).json
    app = trials_app.extensions["trials"]
    assert _deliver(app, _subscription_event(ACME, "premium", "evt-p")) == "no trial converted"
    assert _deliver(app, _subscription_event(ACME, "ultimate")) == "converted 1"
    assert _deliver(app, _subscription_event(ACME, "ultimate")) == "duplicate"
    [converted] = client.get(f"/namespaces/{ACME}/trials", headers=auth(ALICE)).json
    assert converted["id"] == trial["id"] and converted["status"] == "converted"
    assert topics(trials_app) == ["trial.started", "trial.converted"]
    # A converted trial does not expire later.
    assert expire_due(app, app.ctx.uow) == []


def test_checkout_down_is_a_clear_503(trials_db_url: str, clock: FixedClock) -> None:
    from tests.support import free_port

    app = create_app(trials_settings(trials_db_url, f"http://127.0.0.1:{free_port()}"), clock)
    response = app.test_client().post(f"/namespaces/{GLOBEX}/trials", json={"kind": "ultimate"},
                                      headers=auth(ALICE))
    assert response.status_code == 503 and response.json["code"] == "directory_unavailable"
    with Session(app.extensions["trials"].ctx.engine) as s:
        assert s.scalar(select(func.count()).select_from(Trial)) == 0
        assert s.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    app.extensions["trials"].ctx.close()


def _expanded(namespace_id: int, added: list[dict[str, Any]], event_id: str) -> dict[str, Any]:
    return {"id": event_id, "topic": "subscription.expanded", "source": "checkout",
            "occurred_at": NOW.isoformat(),
            "payload": {"namespace_id": namespace_id, "namespace_path": "globex", "plan": "premium",
                        "seats": 8, "addons": [{"sku": "duo_pro", "seats": 5}], "subscription_id": 7,
                        "features": [], "order_id": 9, "added": added}}


def test_buying_duo_pro_during_its_trial_converts_it_and_the_seat_holder_keeps_the_seat(
        client: FlaskClient, trials_app: Flask) -> None:
    trial = start(client, GLOBEX, kind="duo_pro").json
    app = trials_app.extensions["trials"]
    # Seats added to the plan alone buy no Duo: the trial runs on.
    seats = [{"kind": "seats", "sku": "premium_seats", "quantity": 3}]
    assert _deliver(app, _expanded(GLOBEX, seats, "evt-seats")) == "no trial converted"
    duo = [{"kind": "addon", "sku": "duo_pro", "quantity": 5}]
    assert _deliver(app, _expanded(GLOBEX, duo, "evt-duo")) == "converted 1"
    [converted] = client.get(f"/namespaces/{GLOBEX}/trials", headers=auth(ALICE)).json
    assert converted["id"] == trial["id"] and converted["status"] == "converted"
    with db(trials_app) as s:
        event = s.scalars(select(OutboxMessage.payload).where(OutboxMessage.topic == "trial.converted")).one()
    assert event["kind"] == "duo_pro" and event["seat_holder"] == ALICE and event["subscription_id"] == 7
