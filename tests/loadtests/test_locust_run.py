"""A short real load test: `python -m loadtests.run` (locust as a subprocess)
against checkout and trials on real sockets, localstripe for the cards.

About 20 s: a few users with little think time, on SQLite only."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loadtests import run
from loadtests.population import FIRST_IDS
from services.checkout.adapters.models import FunnelEventRow, Order
from services.checkout.app import create_app
from services.common.clock import FixedClock
from services.trials.adapters.models import FunnelEventRow as TrialsFunnelEventRow
from tests.conftest import _seeded, make_settings, relaying
from tests.support import TEST_SECRET, LiveServer, LocalStripe

THRESHOLDS = """
[default]
max_failure_ratio = 0.0
p95_ms = 30000

[total]
max_failure_ratio = 0.0

[endpoint."POST /purchases"]
required = true

[endpoint."GET /namespaces/[id]/trials/eligibility"]
required = true
"""


@pytest.fixture
def stripe_app(checkout_db_url: str, clock: FixedClock, localstripe: LocalStripe) -> Iterator[Flask]:
    """Checkout as docs/loadtests.md asks a load test's target to run (and `make run`
    does): every simulated person comes from 127.0.0.1, so the per-client card and
    code limits are raised; the per-account ones hold."""
    settings = make_settings("checkout", checkout_db_url, localstripe.url).with_overrides(
        card_attempts_per_client="600/minute", code_attempts_per_client="600/minute")
    flask_app = _seeded(create_app(settings, clock), clock)
    yield flask_app
    flask_app.extensions["checkout"].ctx.close()


@pytest.fixture
def trials_server(trials_server_app: tuple[Flask, LiveServer], stripe_app: Flask) -> Iterator[LiveServer]:
    """Trials on its socket, checkout's relay feeding its read model as the worker would."""
    server = trials_server_app[1]
    with relaying(stripe_app, server.url):
        yield server


def traffic_of(engine: object, model: type) -> dict[str, int]:
    with Session(engine) as s:  # type: ignore[arg-type]
        return dict(s.execute(select(model.traffic, func.count()).group_by(model.traffic)).all())


@pytest.mark.parametrize("backend", ["sqlite"])  # one real run is enough; PostgreSQL is for `make bench`
def test_a_short_load_test_buys_and_leaves_only_synthetic_events(
        backend: str, live_checkout: LiveServer, trials_server: LiveServer, stripe_app: Flask,
        trials_app: Flask, localstripe: LocalStripe, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    checkout_engine = stripe_app.extensions["checkout"].ctx.engine
    trials_engine = trials_app.extensions["trials"].ctx.engine
    before = traffic_of(checkout_engine, FunnelEventRow), traffic_of(trials_engine, TrialsFunnelEventRow)
    # The population is made through the services' API, its tokens signed with their secret.
    monkeypatch.setenv("AUTH_SECRET", TEST_SECRET)
    # Quick steps, and a fair chance of every card path in a few funnels.
    for name, value in {"LOADTEST_WAIT": "0.05-0.2", "LOADTEST_DECLINED_SHARE": "0.25",
                        "LOADTEST_3DS_SHARE": "0.35", "LOADTEST_CODE_SHARE": "0.5",
                        "LOADTEST_TRIAL_START_SHARE": "0.5", "EXPERIMENTS_URL": ""}.items():
        monkeypatch.setenv(name, value)
    thresholds = tmp_path / "thresholds.toml"
    thresholds.write_text(THRESHOLDS)

    status = run.main(["--users", "4", "--spawn-rate", "4", "--time", "8s", "--name", "short",
                       "--checkout-url", live_checkout.url, "--trials-url", trials_server.url,
                       "--stripe-url", localstripe.url, "--thresholds", str(thresholds),
                       "--out", str(tmp_path), "--prospects", "40", "--owners", "4",
                       "--profiles", "Prospect", "TrialOwner", "--locust-arg=--loglevel=WARNING"])

    assert status == 0
    assert (tmp_path / "short.html").stat().st_size > 0
    with (tmp_path / "short_stats.csv").open(newline="") as fh:
        stats = {f"{r['Type']} {r['Name']}".strip(): r for r in csv.DictReader(fh)}
    assert int(stats["Aggregated"]["Failure Count"]) == 0
    assert int(stats["POST /purchases"]["Request Count"]) >= 1
    assert int(stats["GET /namespaces/[id]/trials/eligibility"]["Request Count"]) >= 1
    with Session(checkout_engine) as s:
        completed = s.scalars(select(Order.traffic).where(
            Order.status == "completed", Order.namespace_id >= FIRST_IDS["free"])).all()
    assert completed and set(completed) == {"synthetic"}
    # Everything the run did is synthetic: no real or demo funnel event was added anywhere.
    after = traffic_of(checkout_engine, FunnelEventRow), traffic_of(trials_engine, TrialsFunnelEventRow)
    for old, new in zip(before, after, strict=True):
        assert {k: v for k, v in new.items() if k != "synthetic"} == old
        assert new.get("synthetic", 0) > old.get("synthetic", 0)
