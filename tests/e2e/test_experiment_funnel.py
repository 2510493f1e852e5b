"""Issue 18, end to end: a buyer in smb-discount-prompt who saves a card before
choosing a plan is counted as purchased, with the order's revenue, once the
collector has copied checkout's funnel events into the experiment store."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from experiments import decisions
from experiments.definitions import definition_for, load_payload
from experiments.metrics import load_metrics
from experiments.store import collect_once, upgrade
from persistence.db import make_engine
from services.checkout.app import create_app
from services.common.clock import FixedClock
from services.common.config import ROOT
from tests.conftest import _seeded, make_settings
from tests.e2e.helpers import Buyer
from tests.support import LocalStripe, sqlite_url

PAYLOAD = ROOT / "experiments" / "payload.json"
KEY = "smb-discount-prompt"
ACME = 100


def test_a_card_saved_before_the_plan_still_counts_as_a_purchase(
        checkout_db_url: str, clock: FixedClock, localstripe: LocalStripe, tmp_path: Path) -> None:
    app = _seeded(create_app(make_settings("checkout", checkout_db_url, localstripe.url,
                                           payload_file=str(PAYLOAD)), clock), clock)
    buyer = Buyer(app.test_client(), localstripe.url)
    buyer.save_account()
    buyer.add_card("4242424242424242")  # before any exposure: the quote is what exposes the buyer
    clock.advance(timedelta(minutes=2))
    quote = buyer.post("/quotes", {"namespace_id": ACME, "plan": "premium", "seats": 5})
    assert quote.status_code == 200, quote.json
    clock.advance(timedelta(minutes=1))
    bought = buyer.buy("card-first")
    assert bought.status_code == 201, bought.json
    total = bought.json["order"]["total"]

    store_url = sqlite_url(tmp_path / "experiments.db")
    upgrade(store_url)
    store = make_engine(store_url)
    assert collect_once(store, {"checkout": app.extensions["checkout"].ctx.engine}, max_batches=None) > 0
    metrics = load_metrics()[KEY]
    report = decisions.report(store, metrics, definition_for(KEY, load_payload(PAYLOAD)),
                              now=clock.now() + timedelta(days=metrics.window_days + 1))
    store.dispose()
    app.extensions["checkout"].ctx.close()

    [arm] = [v for v in report.variations if v.units]
    assert [(s.label, s.units) for s in arm.steps] == [
        ("Chose a plan", 1), ("Added a card", 0), ("Purchased", 1)]  # the card predates the exposure
    assert report.decision is not None
    revenue = next(r for r in report.decision.results if r.metric == "revenue")
    assert (revenue.mean if arm.index else revenue.control_mean) == total
