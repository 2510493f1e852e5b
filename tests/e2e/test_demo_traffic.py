"""The demo traffic generator makes its people through checkout's directory
hooks and walks them through real HTTP with the shipped experiments on: both
variations get people, everything they do is marked demo (their Premium
groups' purchases, the set-up, synthetic)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from loadtests import traffic
from loadtests.population import Stack
from services.checkout.adapters.models import FunnelEventRow, Order
from services.checkout.app import create_app
from services.common.clock import FixedClock
from services.common.config import ROOT
from services.trials.adapters.models import FunnelEventRow as TrialEventRow
from services.trials.app import create_app as create_trials_app
from tests.conftest import WEBHOOK_SECRET, _seeded, join_trials, make_settings, relaying, trials_settings
from tests.support import TEST_SECRET, LiveServer, LocalStripe

pytestmark = pytest.mark.e2e
PAYLOAD = str(ROOT / "experiments" / "payload.json")


@pytest.fixture
def stack(checkout_db_url: str, trials_db_url: str, clock: FixedClock, localstripe: LocalStripe
          ) -> Iterator[tuple[Flask, Flask, Any]]:
    # As `make run` does: every demo person comes from 127.0.0.1.
    settings = make_settings("checkout", checkout_db_url, localstripe.url, payload_file=PAYLOAD).with_overrides(
        card_attempts_per_client="600/minute", code_attempts_per_client="600/minute")
    checkout = _seeded(create_app(settings, clock), clock)
    checkout_server = LiveServer(checkout)
    localstripe.register_webhook("checkout", f"{checkout_server.url}/stripe/webhooks", WEBHOOK_SECRET)
    trials = create_trials_app(trials_settings(trials_db_url, checkout_server.url).with_overrides(
        growthbook_payload_file=PAYLOAD), clock)
    trials_server = LiveServer(trials)
    join_trials(checkout, trials_server.url)
    with relaying(checkout, trials_server.url):  # as make run's checkout worker does
        yield checkout, trials, Stack(checkout_url=checkout_server.url, trials_url=trials_server.url,
                                      stripe_url=localstripe.url, secret=TEST_SECRET)
    trials_server.stop()
    checkout_server.stop()
    trials.extensions["trials"].ctx.close()
    checkout.extensions["checkout"].ctx.close()


def events(app: Flask, key: str, model: Any) -> list[Any]:
    with Session(app.extensions[key].ctx.engine) as s:
        return list(s.scalars(select(model)))


def test_demo_traffic_walks_both_variations_of_every_experiment(stack: tuple[Flask, Flask, Any]) -> None:
    checkout, trials, people = stack
    counts = traffic.run(people, prospect_count=60, owner_count=30, workers=4, seed=3)
    assert counts["offers seen"] == 60
    assert counts["purchases"] > 0 and counts["ultimate trials"] > 0
    assert not [what for what in counts if "failed" in what or "unreachable" in what], counts

    seen = events(checkout, "checkout", FunnelEventRow) + events(trials, "trials", TrialEventRow)
    demo = [e for e in seen if e.traffic == "demo"]
    assert {(e.user_id or 0) // 1_000_000 for e in demo} == {3, 4}  # the prospects and the trial Owners
    assert {e.traffic for e in seen if (e.user_id or 0) >= 3_000_000} == {"demo", "synthetic"}
    exposed = Counter((e.properties["experiment"], e.properties["variation"])
                      for e in demo if e.step == "experiment_viewed")
    for experiment in ("smb-discount-prompt", "default-seats", "ultimate-trial-length"):
        assert exposed[(experiment, 0)] > 0 and exposed[(experiment, 1)] > 0, exposed
    with Session(checkout.extensions["checkout"].ctx.engine) as s:
        completed = s.scalars(select(Order).where(Order.status == "completed")).all()
    assert len([o for o in completed if o.traffic == "demo"]) == counts["purchases"] + counts["upgrades"]
    assert len([o for o in completed if o.traffic == "synthetic"]) == 30  # the Owners' Premium groups
