"""Trials and checkout talking through events over real HTTP: a trial lifts the
namespace's entitlements in checkout, expiry returns them, buying converts."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from identity.auth import service_token
from messaging.relay import Subscriber, relay_once
from messaging.routing import owners
from services.checkout.adapters.models import Membership
from services.common.clock import FixedClock
from services.trials.adapters.models import OutboxMessage, Trial
from services.trials.app import create_app as create_trials_app
from services.trials.usecases.trials import expire_due
from tests.conftest import join_trials, trials_settings
from tests.e2e.helpers import Buyer
from tests.support import LiveServer, LocalStripe, auth

pytestmark = pytest.mark.e2e
ALICE, BOB = 1, 2
ACME, GLOBEX = 100, 200


def owned_by(publisher: str) -> tuple[str, ...]:
    """The topics trials hears from `publisher` (messaging/routing.py)."""
    return tuple(topic for topic, owner in owners("trials").items() if owner == publisher)


class Stack:
    def __init__(self, checkout: Flask, checkout_url: str, trials: Flask, trials_url: str) -> None:
        self.checkout, self.trials = checkout, trials
        self.checkout_url, self.trials_url = checkout_url, trials_url

    def relay(self) -> None:
        """What the worker does each second, done now (each relay with its own service's token)."""
        for app, name, subscriber in (
                (self.checkout, "checkout", Subscriber("trials", self.trials_url, owned_by("checkout"))),
                (self.trials, "trials", Subscriber("checkout", self.checkout_url, ("trial.",)))):
            ctx = app.extensions[name].ctx
            relay_once(ctx, [subscriber], token=lambda audience, ctx=ctx: service_token(ctx.settings, audience))

    def entitlements(self, ns: int) -> dict[str, Any]:
        return requests.get(f"{self.checkout_url}/namespaces/{ns}/entitlements", headers=auth(ALICE),
                            timeout=10).json()

    def start_trial(self, ns: int, user: int = ALICE) -> requests.Response:
        return requests.post(f"{self.trials_url}/namespaces/{ns}/trials", json={"kind": "ultimate"},
                             headers=auth(user), timeout=30)

    def sweep(self) -> list[int]:
        app = self.trials.extensions["trials"]
        return expire_due(app, app.ctx.uow)


@pytest.fixture
def stack(stripe_app: Flask, live_checkout: LiveServer, trials_db_url: str,
          clock: FixedClock) -> Iterator[Stack]:
    trials = create_trials_app(trials_settings(trials_db_url, live_checkout.url), clock)
    server = LiveServer(trials)
    join_trials(stripe_app, server.url)
    yield Stack(stripe_app, live_checkout.url, trials, server.url)
    server.stop()
    trials.extensions["trials"].ctx.close()


def test_trial_lifts_entitlements_until_it_expires(stack: Stack, clock: FixedClock) -> None:
    assert stack.entitlements(GLOBEX)["plan"] == "premium"
    started = stack.start_trial(GLOBEX)
    assert started.status_code == 201
    stack.relay()
    during = stack.entitlements(GLOBEX)
    assert (during["plan"], during["paid_plan"]) == ("ultimate", "premium")
    assert "security_dashboards" in during["features"]
    assert [t["kind"] for t in during["trials"]] == ["ultimate"]
    clock.advance(timedelta(days=60, minutes=1))
    assert stack.sweep() == [started.json()["id"]]
    stack.relay()
    after = stack.entitlements(GLOBEX)
    assert (after["plan"], after["trials"]) == ("premium", [])  # Premium stays Premium
    # Deliver every trial event again, oldest last: nothing changes.
    with Session(stack.trials.extensions["trials"].ctx.engine) as s:
        s.execute(OutboxMessage.__table__.update().values(published_at=None))
        s.commit()
    stack.relay()
    assert stack.entitlements(GLOBEX)["plan"] == "premium"


def test_buying_ultimate_during_the_trial_converts_it(stack: Stack, localstripe: LocalStripe) -> None:
    assert stack.start_trial(ACME).status_code == 201
    stack.relay()
    assert stack.entitlements(ACME)["plan"] == "ultimate"
    buyer = Buyer(stack.checkout.test_client(), localstripe.url)
    buyer.save_account()
    buyer.add_card("4242424242424242")
    assert buyer.buy("convert", plan="ultimate", seats=2).status_code == 201
    stack.relay()  # subscription.created reaches trials, which converts ...
    stack.relay()  # ... and trial.converted reaches checkout
    [trial] = requests.get(f"{stack.trials_url}/namespaces/{ACME}/trials", headers=auth(ALICE), timeout=10).json()
    assert trial["status"] == "converted"
    ent = stack.entitlements(ACME)
    assert (ent["plan"], ent["paid_plan"], ent["trials"]) == ("ultimate", "ultimate", [])
    with Session(stack.trials.extensions["trials"].ctx.engine) as s:
        steps = [t for t in s.scalars(select(OutboxMessage.topic))]
    assert sorted(steps) == ["trial.converted", "trial.started"]


def test_two_owners_racing_get_one_trial(postgres_only: None, stack: Stack) -> None:
    with Session(stack.checkout.extensions["checkout"].ctx.engine) as s:
        s.get(Membership, (GLOBEX, BOB)).role = "owner"
        s.commit()
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda i: stack.start_trial(GLOBEX, (ALICE, BOB)[i % 2]), range(20)))
    assert {r.status_code for r in results} <= {200, 201}
    assert [r.status_code for r in results].count(201) == 1
    assert len({r.json()["id"] for r in results}) == 1
    with Session(stack.trials.extensions["trials"].ctx.engine) as s:
        assert s.scalar(select(func.count()).select_from(Trial)) == 1
        assert s.scalar(select(func.count()).select_from(OutboxMessage)) == 1


def test_overlapping_sweeps_expire_each_trial_once(postgres_only: None, stack: Stack,
                                                   clock: FixedClock) -> None:
    with Session(stack.trials.extensions["trials"].ctx.engine) as s:
        for ns in range(5000, 5030):
            s.add(Trial(namespace_id=ns, namespace_path=f"g{ns}", kind="ultimate", status="active",
                        plan_before="free", started_by=1, started_by_email="a@b.c",
                        started_at=clock.now() - timedelta(days=31), ends_at=clock.now() - timedelta(minutes=1)))
        s.commit()
    with ThreadPoolExecutor(max_workers=5) as pool:
        ended = list(pool.map(lambda _: stack.sweep(), range(5)))
    assert sorted(i for batch in ended for i in batch) == list(range(1, 31))
    with Session(stack.trials.extensions["trials"].ctx.engine) as s:
        assert s.scalar(select(func.count()).select_from(OutboxMessage)
                        .where(OutboxMessage.topic == "trial.expired")) == 30


def test_premium_namespace_upgrades_during_its_trial_and_converts(stack: Stack, localstripe: LocalStripe) -> None:
    assert stack.start_trial(GLOBEX).status_code == 201
    stack.relay()
    buyer = Buyer(stack.checkout.test_client(), localstripe.url)
    buyer.add_card("4242424242424242")  # Alice's seeded billing account
    quote = buyer.post("/quotes", {"namespace_id": GLOBEX, "plan": "ultimate", "seats": 5}).json
    assert quote["upgrades_subscription_id"] is not None and quote["term_end"] != "2027-11-21"
    upgraded = buyer.buy("upgrade", namespace_id=GLOBEX, plan="ultimate", seats=5)
    assert upgraded.status_code == 201, upgraded.json
    assert upgraded.json["order"]["total"] == quote["total"] > 0
    sub = upgraded.json["subscription"]
    assert (sub["plan"], sub["seats"], sub["term_end"]) == ("ultimate", 5, quote["term_end"])
    stack.relay()  # subscription.upgraded -> trials converts
    stack.relay()  # trial.converted -> checkout
    [trial] = requests.get(f"{stack.trials_url}/namespaces/{GLOBEX}/trials", headers=auth(ALICE), timeout=10).json()
    assert trial["status"] == "converted"
    ent = stack.entitlements(GLOBEX)
    assert (ent["plan"], ent["paid_plan"], ent["trials"]) == ("ultimate", "ultimate", [])


def test_events_from_the_wrong_service_are_refused(stack: Stack) -> None:
    forged = {"id": "00000000-0000-0000-0000-000000000001", "topic": "trial.started", "source": "notifications",
              "occurred_at": "2026-11-21T12:00:00+00:00",
              "payload": {"namespace_id": ACME, "kind": "ultimate", "status": "active", "version": 1,
                          "ends_at": "2030-01-01T00:00:00+00:00", "grants_plan": "ultimate",
                          "occurred_at": "2026-11-21T12:00:00+00:00"}}
    response = requests.post(f"{stack.checkout_url}/internal/events", json=forged, timeout=10,
                             headers={"Authorization": "Bearer " + service_token(
                                 stack.trials.extensions["trials"].ctx.settings, "checkout")})
    assert response.status_code == 403 and response.json()["code"] == "source_not_allowed"
    assert stack.entitlements(ACME)["plan"] == "free"


def test_a_purchase_changes_eligibility_once_its_event_is_relayed(stack: Stack, localstripe: LocalStripe) -> None:
    def verdicts() -> dict[str, dict[str, Any]]:
        response = requests.get(f"{stack.trials_url}/namespaces/{ACME}/trials/eligibility", headers=auth(ALICE),
                                timeout=10)
        return {v["kind"]: v for v in response.json()}

    before = verdicts()
    assert before["ultimate"]["duration_days"] == 30 and before["duo_pro"]["reason"] == "plan_not_eligible"
    buyer = Buyer(stack.checkout.test_client(), localstripe.url)
    buyer.save_account()
    buyer.add_card("4242424242424242")
    assert buyer.buy("premium", plan="premium", seats=2).status_code == 201
    assert verdicts()["duo_pro"]["reason"] == "plan_not_eligible"  # trials has not heard yet
    stack.relay()  # subscription.created reaches trials' read model
    after = verdicts()
    assert after["duo_pro"]["eligible"] and after["ultimate"]["duration_days"] == 60
