"""metrics.toml and the payload: what they define, and clear errors when they are wrong."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from experiments.definitions import (
    KILLED,
    RUNNING,
    STOPPED,
    PayloadUnreadable,
    definition_for,
    experiment_definitions,
    load_payload,
)
from experiments.metrics import FunnelStep, MetricsError, load_metrics, parse_metrics
from services.common.config import ROOT

PAYLOAD = json.loads((ROOT / "experiments" / "payload.json").read_text())
GOOD = {"unit": "user", "window_days": 7, "steps": [{"step": "plan_chosen", "label": "Chose"}]}


def test_the_shipped_metrics_cover_the_four_experiments() -> None:
    metrics = load_metrics()
    assert list(metrics) == ["smb-discount-prompt", "default-seats", "ultimate-trial-length", "duo-pro-upsell"]
    assert [s.step for s in metrics["smb-discount-prompt"].steps] == [
        "plan_chosen", "card_captured", "purchase_completed"]
    assert metrics["ultimate-trial-length"].steps[0] == FunnelStep(
        "trial_started", "Started an Ultimate trial", {"kind": "ultimate"})
    assert {m.unit for k, m in metrics.items() if k != "smb-discount-prompt"} == {"namespace"}


def test_the_shipped_metrics_agree_with_the_payload() -> None:
    definitions = experiment_definitions(PAYLOAD)
    for key, metrics in load_metrics().items():
        assert definitions[key].hash_attribute == metrics.hash_attribute


@pytest.mark.parametrize(("change", "message"), [
    ({"unit": "team"}, "experiments.x.unit: must be one of ['namespace', 'user'], not 'team'"),
    ({"window_days": 0}, "experiments.x.window_days: must be a whole number of days from 1 to 366"),
    ({"window_days": 1.5}, "window_days: must be a whole number"),
    ({"steps": []}, "experiments.x.steps: must be a non-empty list"),
    ({"steps": [{"step": "plan_chosn"}]}, "experiments.x.steps[0].step: unknown step 'plan_chosn'; known steps:"),
    ({"steps": [{"step": "experiment_viewed"}]}, "is the exposure itself, not a funnel step"),
    ({"steps": [{"step": "trial_started", "where": {"kind": ["a"]}}]},
     "steps[0].where.kind: must be a string, integer or boolean"),
    ({"steps": [{"step": "trial_started", "where": {"a.b": "x"}}]}, "'a.b' is not a property name"),
    ({"steps": [{"step": "trial_started", "filter": {}}]}, "steps[0]: unknown key(s) ['filter']"),
    ({"windows": 3}, "experiments.x: unknown key(s) ['windows']"),
])
def test_invalid_metrics_say_where_and_why(change: dict[str, Any], message: str) -> None:
    with pytest.raises(MetricsError) as error:
        parse_metrics({"experiments": {"x": {**GOOD, **change}}})
    assert message in str(error.value)


def test_an_unreadable_metrics_file_is_a_metrics_error(tmp_path: Path) -> None:
    path = tmp_path / "metrics.toml"
    path.write_text("[experiments.x\n")
    with pytest.raises(MetricsError, match="not valid TOML"):
        load_metrics(path)
    with pytest.raises(MetricsError, match="no experiments"):
        parse_metrics({})


def test_definitions_come_from_the_payload_rules() -> None:
    smb = definition_for("smb-discount-prompt", PAYLOAD)
    assert (smb.name, smb.status, smb.feature, smb.hash_attribute) == (
        "SMB discount prompt on the checkout page", RUNNING, "smb-discount-prompt", "id")
    assert [(v.index, v.name, v.weight) for v in smb.variations] == [(0, "No prompt", 0.5), (1, "Prompt", 0.5)]
    assert definition_for("default-seats", PAYLOAD).feature == "checkout-default-seats"


def test_status_running_killed_or_stopped() -> None:
    payload = copy.deepcopy(PAYLOAD)
    payload["features"]["checkout-default-seats"]["rules"][0]["coverage"] = 0
    payload["features"]["ultimate-trial-days"]["rules"].insert(0, {"force": 60})
    payload["features"]["duo-pro-upsell"]["rules"] = []
    assert definition_for("smb-discount-prompt", payload).status == RUNNING
    assert definition_for("default-seats", payload).status == KILLED
    assert definition_for("ultimate-trial-length", payload).status == KILLED  # a force rule wins first
    stopped = definition_for("duo-pro-upsell", payload)
    assert stopped.status == STOPPED and stopped.variations == ()
    payload["features"]["ultimate-trial-days"]["rules"][0]["condition"] = {"country": "FR"}
    assert definition_for("ultimate-trial-length", payload).status == RUNNING  # only some are forced


def test_an_unreadable_payload_says_why(tmp_path: Path) -> None:
    with pytest.raises(PayloadUnreadable, match="can not be read"):
        load_payload(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(PayloadUnreadable, match="not JSON"):
        load_payload(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(PayloadUnreadable, match="'features' object"):
        load_payload(tmp_path / "list.json")
