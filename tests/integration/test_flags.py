"""Feature flags and experiments in the services: the payload's life (refresh,
kill switch, bad edits), assignment, exposures, and what each experiment changes."""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from experiments.definitions import experiment_definitions
from flags.client import Flags
from flags.payload import PayloadError, parse_payload
from funnel.telemetry import FunnelEvent, PostHogForwarder, Step
from services.checkout.adapters.models import ExposureRow, FunnelEventRow
from services.checkout.app import create_app
from services.common.clock import FixedClock
from services.common.config import ROOT
from tests.conftest import NOW, _seeded, join_trials, make_settings, trials_settings
from tests.support import LiveServer, PayloadServer, auth

PAYLOAD = ROOT / "experiments" / "payload.json"
ALICE = auth(1)
OWNER_ATTRS = {"id": "1", "namespace_id": "100", "plan": "free", "new_customer": True}


def payload_with(variations: dict[str, int | None]) -> dict[str, Any]:
    """The real payload with some features forced to one variation (weights
    0/1), or with their rules removed (None: the kill switch)."""
    data = json.loads(PAYLOAD.read_text())
    for feature, forced in variations.items():
        if forced is None:
            data["features"][feature]["rules"] = []
            continue
        rule = data["features"][feature]["rules"][0]
        rule["weights"] = [1.0 if i == forced else 0.0 for i in range(len(rule["variations"]))]
    return data


@pytest.fixture
def write_payload(tmp_path: Path) -> Callable[[dict[str, Any] | str], Path]:
    path = tmp_path / "payload.json"
    stamp = [time.time_ns()]

    def write(content: dict[str, Any] | str) -> Path:
        path.write_text(content if isinstance(content, str) else json.dumps(content))
        stamp[0] += 1_000_000_000  # a visibly newer mtime even within one clock tick
        os.utime(path, ns=(stamp[0], stamp[0]))
        return path
    return write


# --- the payload ------------------------------------------------------------------------
@pytest.mark.parametrize("raw,says", [
    ("{not json", "not JSON"),
    ('{"feature": {}}', "'features' object"),
    ('{"features": {"x": {"rules": {}}}}', "features.x.rules is not a list"),
    ('{"features": {"x": {"rules": [{"variations": [1]}]}}}', "at least two values"),
    ('{"features": {"x": {"rules": [{"variations": [1, 2], "weights": [0.7, 0.7]}]}}}', "add up to 1"),
    ('{"features": {"x": {"rules": [{"variations": [1, 2], "weights": [1]}]}}}', "one non-negative"),
    ('{"features": {"x": {"rules": [{"variations": [1, 2], "coverage": 2}]}}}', "coverage"),
    ('{"features": {"x": {"rules": [{"variations": [1, 2], "hashAttribute": "email"}]}}}', "hashAttribute"),
])
def test_a_bad_payload_is_refused_with_what_is_wrong(raw: str, says: str) -> None:
    with pytest.raises(PayloadError, match=says):
        parse_payload(raw)


def test_the_shipped_payload_defines_the_four_funnel_experiments() -> None:
    experiments = experiment_definitions(parse_payload(PAYLOAD.read_bytes()).raw)
    assert set(experiments) == {"smb-discount-prompt", "default-seats", "ultimate-trial-length",
                                "duo-pro-upsell"}
    assert {key: [v.weight for v in e.variations] for key, e in experiments.items()} == {
        key: [0.5, 0.5] for key in experiments}


def test_a_malformed_edit_is_logged_and_the_last_good_payload_stays(
        write_payload: Callable[[Any], Path], caplog: pytest.LogCaptureFixture) -> None:
    flags = Flags.from_file(write_payload(payload_with({"smb-discount-prompt": 1})))
    write_payload('{"features": {"smb-discount-prompt": ')
    with caplog.at_level(logging.ERROR, logger="flags.client"):
        assert flags.refresh_from_file() is False
    assert "rejected, keeping the last good one: not JSON" in caplog.text
    assert flags.evaluate("smb-discount-prompt", OWNER_ATTRS).value is True


def test_the_kill_switch_is_an_edit_of_the_payload_not_a_deploy(write_payload: Callable[[Any], Path]) -> None:
    flags = Flags.from_file(write_payload(payload_with({"smb-discount-prompt": 1})))
    assert flags.evaluate("smb-discount-prompt", OWNER_ATTRS).exposure is not None
    write_payload(payload_with({"smb-discount-prompt": None}))
    flags.start()
    try:
        deadline = time.monotonic() + 10
        while flags.evaluate("smb-discount-prompt", OWNER_ATTRS).value and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        flags.stop()
    killed = flags.evaluate("smb-discount-prompt", OWNER_ATTRS)
    assert (killed.value, killed.source, killed.exposure) == (False, "defaultValue", None)


def test_a_start_with_a_broken_payload_file_fails_loudly(write_payload: Callable[[Any], Path]) -> None:
    with pytest.raises(RuntimeError, match="feature flag payload .* not JSON"):
        Flags.from_file(write_payload("[oops"))


@pytest.fixture
def payload_server() -> Iterator[PayloadServer]:
    server = PayloadServer(payload_with({"smb-discount-prompt": 1}))
    yield server
    server.stop()


def test_the_api_payload_is_refreshed_in_the_background(write_payload: Callable[[Any], Path],
                                                        payload_server: PayloadServer) -> None:
    flags = Flags.from_file(write_payload(payload_with({"smb-discount-prompt": 0})),
                            api_host=payload_server.url, client_key="sdk-test", refresh_seconds=0.2)
    assert flags.evaluate("smb-discount-prompt", OWNER_ATTRS).value is False  # the file, at start
    flags.start()
    try:
        deadline = time.monotonic() + 10
        while not flags.evaluate("smb-discount-prompt", OWNER_ATTRS).value and time.monotonic() < deadline:
            time.sleep(0.05)
        assert flags.evaluate("smb-discount-prompt", OWNER_ATTRS).value is True
        payload_server.payload = payload_with({"smb-discount-prompt": None})
        while flags.evaluate("smb-discount-prompt", OWNER_ATTRS).value and time.monotonic() < deadline:
            time.sleep(0.05)
        assert flags.evaluate("smb-discount-prompt", OWNER_ATTRS).value is False
    finally:
        flags.stop()


def test_an_unreachable_api_host_keeps_the_last_good_payload(write_payload: Callable[[Any], Path],
                                                             payload_server: PayloadServer,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    flags = Flags.from_file(write_payload(payload_with({})), api_host=payload_server.url,
                            client_key="sdk-test")
    assert flags.refresh_from_api() is True
    payload_server.stop()
    with caplog.at_level(logging.WARNING, logger="flags.client"):
        assert flags.refresh_from_api() is False
    assert "GrowthBook API unreachable, keeping the last good payload" in caplog.text
    assert flags.evaluate("smb-discount-prompt", OWNER_ATTRS).value is True


def test_a_malformed_api_answer_is_refused(write_payload: Callable[[Any], Path],
                                           payload_server: PayloadServer) -> None:
    flags = Flags.from_file(write_payload(payload_with({"smb-discount-prompt": 0})),
                            api_host=payload_server.url, client_key="sdk-test")
    payload_server.payload = {"features": {"smb-discount-prompt": {"rules": "all"}}}
    assert flags.refresh_from_api() is False
    assert flags.evaluate("smb-discount-prompt", OWNER_ATTRS).value is False


# --- assignment -------------------------------------------------------------------------
def test_assignment_hashes_the_stable_id_and_splits_evenly() -> None:
    flags = Flags.from_file(PAYLOAD)
    seen = [flags.evaluate("smb-discount-prompt", {**OWNER_ATTRS, "id": str(i)}).exposure
            for i in range(4000)]
    assert all(e is not None and e.hash_attribute == "id" for e in seen)
    share = sum(e.variation for e in seen if e) / len(seen)
    assert 0.46 < share < 0.54
    # Namespace experiments hash the namespace: every member of it gets one variation.
    by_member = {flags.evaluate("ultimate-trial-days", {"id": str(user), "namespace_id": "200",
                                                        "plan": "premium"}).value for user in range(50)}
    assert len(by_member) == 1


def test_targeting_uses_what_the_services_know() -> None:
    flags = Flags.from_file(PAYLOAD)
    returning = flags.evaluate("smb-discount-prompt", {**OWNER_ATTRS, "new_customer": False})
    assert (returning.value, returning.exposure) == (False, None)
    free = flags.evaluate("ultimate-trial-days", {"id": "1", "namespace_id": "100", "plan": "free"})
    assert free.exposure is None


# --- exposures and what experiments change in checkout -------------------------------
def checkout_with(url: str, clock: FixedClock, payload: Path) -> Flask:
    return _seeded(create_app(make_settings("checkout", url, payload_file=str(payload)), clock), clock)


@pytest.fixture
def checkout_app_with(checkout_db_url: str, clock: FixedClock
                      ) -> Iterator[Callable[[Path], Flask]]:
    apps: list[Flask] = []

    def make(payload: Path) -> Flask:
        apps.append(checkout_with(checkout_db_url, clock, payload))
        return apps[-1]
    yield make
    for flask_app in apps:
        flask_app.extensions["checkout"].ctx.close()


def funnel(app: Flask) -> list[FunnelEventRow]:
    with Session(app.extensions["checkout"].ctx.engine) as s:
        return list(s.scalars(select(FunnelEventRow).order_by(FunnelEventRow.id)))


@pytest.mark.parametrize("variation", [0, 1])
def test_the_checkout_offer_follows_its_experiments(checkout_app_with: Callable[[Path], Flask],
                                                    write_payload: Callable[[Any], Path],
                                                    variation: int) -> None:
    app = checkout_app_with(write_payload(payload_with({"smb-discount-prompt": variation,
                                                        "checkout-default-seats": variation})))
    offer = app.test_client().get("/namespaces/100/checkout-offer", headers=ALICE)
    assert offer.status_code == 200, offer.json
    minimum = offer.json["minimum_seats"]
    assert offer.json["billable_members"] == minimum == 2
    assert minimum_reason_names(offer.json)
    if variation:
        assert offer.json["default_seats"] == math.ceil(minimum * 1.2) == 3
        assert offer.json["smb_prompt"]["code"] == "SMB2026"
    else:
        assert offer.json["default_seats"] == minimum
        assert offer.json["smb_prompt"] is None


def minimum_reason_names(offer: dict[str, Any]) -> bool:
    return f"has {offer['billable_members']} billable members" in offer["minimum_reason"]


def test_a_returning_customer_is_not_in_the_new_customer_experiments(
        checkout_app_with: Callable[[Path], Flask]) -> None:
    app = checkout_app_with(PAYLOAD)
    # globex (200) is on Premium already: not a new customer, so neither experiment applies.
    offer = app.test_client().get("/namespaces/200/checkout-offer", headers=ALICE).json
    assert offer["smb_prompt"] is None and offer["default_seats"] == offer["minimum_seats"]


def test_the_first_exposure_is_stored_once_and_later_events_carry_the_variation(
        checkout_app_with: Callable[[Path], Flask], write_payload: Callable[[Any], Path]) -> None:
    app = checkout_app_with(write_payload(payload_with({"smb-discount-prompt": 1,
                                                        "checkout-default-seats": 0})))
    client = app.test_client()
    for _ in range(3):
        assert client.get("/namespaces/100/checkout-offer", headers=ALICE).status_code == 200
    quote = client.post("/quotes", headers=ALICE,
                        json={"namespace_id": 100, "plan": "premium", "seats": 2})
    assert quote.status_code == 200 and quote.json["smb_prompt"]["code"] == "SMB2026"

    events = funnel(app)
    exposures = [e for e in events if e.step == Step.EXPERIMENT_VIEWED]
    assert sorted((e.properties["experiment"], e.properties["variation"], e.properties["hash_attribute"],
                   e.properties["hash_value"], e.user_id, e.namespace_id) for e in exposures) == [
        ("default-seats", 0, "namespace_id", "100", 1, 100),
        ("smb-discount-prompt", 1, "id", "1", 1, 100),
    ]
    assert {e.properties["variation_name"] for e in exposures} == {"Billable members", "Prompt"}
    chosen = [e for e in events if e.step == Step.PLAN_CHOSEN]
    assert chosen[-1].experiments == {"smb-discount-prompt": 1, "default-seats": 0}
    with Session(app.extensions["checkout"].ctx.engine) as s:
        assert s.scalar(select(func.count()).select_from(ExposureRow)) == 2


def test_a_later_event_of_the_person_carries_variations_from_an_earlier_request(
        checkout_app_with: Callable[[Path], Flask], write_payload: Callable[[Any], Path]) -> None:
    app = checkout_app_with(write_payload(payload_with({"smb-discount-prompt": 1})))
    client = app.test_client()
    client.get("/namespaces/100/checkout-offer", headers=ALICE)
    # Another process (a fresh app on the same database) knows nothing in memory.
    other = checkout_app_with(write_payload(payload_with({"smb-discount-prompt": None})))
    other.test_client().put("/billing-account", headers=ALICE, json={
        "company": "Acme", "email": "b@acme.test", "country": "US", "address_line1": "1 Main St",
        "city": "Springfield", "state": "IL", "postal_code": "62701"})
    saved = [e for e in funnel(other) if e.step == Step.BILLING_ACCOUNT_SAVED]
    assert saved and saved[-1].experiments == {"smb-discount-prompt": 1}


def test_a_person_quoting_again_costs_no_second_exposure_write(
        checkout_app_with: Callable[[Path], Flask], write_payload: Callable[[Any], Path]) -> None:
    path = write_payload(payload_with({"smb-discount-prompt": 1, "checkout-default-seats": 0}))
    checkout_app_with(path).test_client().get("/namespaces/100/checkout-offer", headers=ALICE)
    app = checkout_app_with(path)  # a fresh process: the rows exist, its memory knows nothing
    writes: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT") and ExposureRow.__tablename__ in statement:
            writes.append(statement)

    engine = app.extensions["checkout"].ctx.engine
    event.listen(engine, "before_cursor_execute", count)
    client = app.test_client()
    quote = {"namespace_id": 100, "plan": "premium", "seats": 2}
    assert client.post("/quotes", headers=ALICE, json=quote).status_code == 200
    first = len(writes)
    for _ in range(3):
        assert client.post("/quotes", headers=ALICE, json=quote).status_code == 200
    # The first quote of this process may try (and find the row); later ones know and write nothing.
    assert first <= 2 and len(writes) == first, writes
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(ExposureRow)) == 2


def test_exposures_race_to_one_row(postgres_only: None, checkout_app_with: Callable[[Path], Flask],
                                   write_payload: Callable[[Any], Path]) -> None:
    path = write_payload(payload_with({"smb-discount-prompt": 1}))
    apps = [checkout_app_with(path) for _ in range(4)]  # four processes' worth of memory
    barrier = threading.Barrier(8)
    codes: list[int] = []

    def view(app: Flask) -> None:
        barrier.wait()
        codes.append(app.test_client().get("/namespaces/100/checkout-offer", headers=ALICE).status_code)

    threads = [threading.Thread(target=view, args=(apps[i % 4],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [200] * 8
    views = [e.properties["experiment"] for e in funnel(apps[0]) if e.step == Step.EXPERIMENT_VIEWED]
    assert sorted(views) == ["default-seats", "smb-discount-prompt"]  # one each, not one per request


# --- trials and notifications ------------------------------------------------------------
@pytest.fixture
def trials_with(trials_db_url: str, clock: FixedClock, app: Flask, checkout_server: LiveServer
                ) -> Iterator[Callable[[Path], Flask]]:
    from services.trials.app import create_app as create_trials_app

    apps: list[tuple[Flask, LiveServer]] = []

    def make(payload: Path) -> Flask:
        settings = trials_settings(trials_db_url, checkout_server.url).with_overrides(
            growthbook_payload_file=str(payload))
        trials = create_trials_app(settings, clock)
        apps.append((trials, LiveServer(trials)))
        join_trials(app, apps[-1][1].url)  # its read model of checkout's namespaces
        return trials
    yield make
    for flask_app, server in apps:
        server.stop()
        flask_app.extensions["trials"].ctx.close()


@pytest.mark.parametrize("variation,days", [(0, 60), (1, 30)])
def test_the_ultimate_on_premium_trial_length_is_the_experiments(
        trials_with: Callable[[Path], Flask], write_payload: Callable[[Any], Path],
        variation: int, days: int) -> None:
    client = trials_with(write_payload(payload_with({"ultimate-trial-days": variation}))).test_client()
    verdicts = {v["kind"]: v for v in client.get("/namespaces/200/trials/eligibility", headers=ALICE).json}
    assert verdicts["ultimate"]["duration_days"] == days
    started = client.post("/namespaces/200/trials", headers=ALICE, json={"kind": "ultimate"})
    assert started.status_code == 201, started.json
    assert started.json["days_left"] == days
    assert started.json["ends_at"] == (NOW + timedelta(days=days)).isoformat()


def test_a_free_namespace_keeps_its_own_trial_length(trials_with: Callable[[Path], Flask],
                                                     write_payload: Callable[[Any], Path]) -> None:
    client = trials_with(write_payload(payload_with({"ultimate-trial-days": 1}))).test_client()
    verdicts = {v["kind"]: v for v in client.get("/namespaces/100/trials/eligibility", headers=ALICE).json}
    assert verdicts["ultimate"]["duration_days"] == 30


@pytest.mark.parametrize("variation", [0, 1])
def test_the_duo_pro_upsell_follows_an_ultimate_trial_start(
        trials_with: Callable[[Path], Flask], write_payload: Callable[[Any], Path], variation: int) -> None:
    client = trials_with(write_payload(payload_with({"duo-pro-upsell": variation}))).test_client()
    started = client.post("/namespaces/200/trials", headers=ALICE, json={"kind": "ultimate"})
    assert started.status_code == 201, started.json
    upsell = started.json["upsell"]
    if variation:
        assert upsell["kind"] == "duo_pro" and "Duo Pro" in upsell["message"]
        duo = client.post("/namespaces/200/trials", headers=ALICE, json={"kind": "duo_pro"})
        assert duo.status_code == 201
    else:
        assert upsell is None


def test_notifications_puts_the_namespace_in_the_same_variation_as_trials(
        fresh_db: Callable[[str], str], clock: FixedClock, write_payload: Callable[[Any], Path]) -> None:
    from services.notifications.adapters.models import ExposureRow as MailExposure
    from services.notifications.adapters.models import Notification
    from services.notifications.app import create_app as create_notifications_app
    from services.notifications.domain.rendering import render

    app = create_notifications_app(make_settings("notifications", fresh_db("notifications"),
                                                 payload_file=str(PAYLOAD)), clock)
    try:
        trial_flags = Flags.from_file(PAYLOAD)
        for namespace_id in range(300, 340):
            envelope = {"id": f"evt-{namespace_id}", "topic": "trial.started", "source": "trials",
                        "occurred_at": NOW.isoformat(), "payload": {
                            "trial_id": namespace_id, "namespace_id": namespace_id, "namespace_path": "g",
                            "kind": "ultimate", "status": "active", "email": "o@g.test", "user_id": 1,
                            "ends_at": (NOW + timedelta(days=60)).isoformat(), "plan_before": "premium",
                            "duo_pro_eligible": True}}
            response = app.test_client().post("/internal/events", json=envelope,
                                              headers=auth(0, roles=("service",)))
            assert response.status_code == 200, response.json
        with Session(app.extensions["service_context"].engine) as s:
            mails = {n.context["trial_id"]: n for n in s.scalars(
                select(Notification).where(Notification.template == "trial_started"))}
            exposures = {int(e.hash_value): e.variation_id for e in s.scalars(select(MailExposure))}
        expected = {ns: trial_flags.evaluate("duo-pro-upsell", {"id": "1", "namespace_id": str(ns),
                                                                "plan": "premium"}).value
                    for ns in range(300, 340)}
        assert {ns: bool(exposures[ns]) for ns in expected} == expected
        assert {ns: mails[ns].context["duo_pro_upsell"] for ns in expected} == expected
        assert 0 < sum(expected.values()) < len(expected)
        offered = next(mails[ns] for ns, on in expected.items() if on)
        assert "GitLab Duo Pro" in render("trial_started", offered.context).text
    finally:
        app.extensions["service_context"].close()


# --- PostHog --------------------------------------------------------------------------------
class FakePostHog:
    def __init__(self) -> None:
        self.captured: list[tuple[str, dict[str, Any]]] = []

    def capture(self, name: str, *, properties: dict[str, Any], **_: Any) -> None:
        self.captured.append((name, properties))


def test_exposures_reach_posthog_as_feature_flag_calls_and_steps_carry_feature_properties() -> None:
    forwarder = PostHogForwarder("phc_test", "http://127.0.0.1:9")
    forwarder.shutdown()
    fake = FakePostHog()
    forwarder._client = fake  # type: ignore[assignment]
    forwarder.forward("checkout", FunnelEvent(
        step=Step.EXPERIMENT_VIEWED, user_id=1, namespace_id=100, occurred_at=NOW,
        properties={"experiment": "smb-discount-prompt", "feature": "smb-discount-prompt", "variation": 1},
        experiments={"smb-discount-prompt": 1}))
    forwarder.forward("checkout", FunnelEvent(step=Step.PLAN_CHOSEN, user_id=1, namespace_id=100,
                                              occurred_at=NOW, experiments={"smb-discount-prompt": 1}))
    (exposure_name, exposure), (step_name, step) = fake.captured
    assert exposure_name == "$feature_flag_called"
    assert (exposure["$feature_flag"], exposure["$feature_flag_response"]) == ("smb-discount-prompt", 1)
    assert step_name == "plan_chosen" and step["$feature/smb-discount-prompt"] == 1


def test_known_variations_expire_and_are_forgotten_on_a_new_exposure(monkeypatch: pytest.MonkeyPatch) -> None:
    from flags import exposures

    now = [100.0]
    monkeypatch.setattr(exposures.time, "monotonic", lambda: now[0])
    known = exposures.KnownVariations(ttl=30)
    known.put(("id", "1"), {"smb-discount-prompt": 1})
    assert known.get(("id", "1")) == {"smb-discount-prompt": 1}
    now[0] += 31
    assert known.get(("id", "1")) is None
    known.put(("id", "1"), {})
    known.forget(("id", "1"))
    assert known.get(("id", "1")) is None


def test_an_exposure_in_this_process_shows_on_the_next_event_at_once(
        checkout_app_with: Callable[[Path], Flask], write_payload: Callable[[Any], Path]) -> None:
    app = checkout_app_with(write_payload(payload_with({"smb-discount-prompt": 1})))
    client = app.test_client()
    client.post("/quotes", headers=ALICE, json={"namespace_id": 100, "plan": "premium", "seats": 2,
                                               "discount_code": "SMB2026"})  # no prompt with a code
    client.get("/namespaces/100/checkout-offer", headers=ALICE)  # the exposure
    client.post("/quotes", headers=ALICE, json={"namespace_id": 100, "plan": "premium", "seats": 2,
                                               "discount_code": "SMB2026"})
    chosen = [e.experiments for e in funnel(app) if e.step == Step.PLAN_CHOSEN]
    assert chosen[0] == {} and chosen[1]["smb-discount-prompt"] == 1
