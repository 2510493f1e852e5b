"""What the GrowthBook payload says about each experiment: its name, feature,
variations (names and weights) and whether it is running.

Status, derived from the payload alone:
- running: the experiment rule is there and lets traffic in;
- killed: the rule is there but lets nobody in (coverage 0, all weights 0, or
  an unconditional force rule before it in the same feature);
- stopped: no rule with that key (the feature or the rule was removed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flags.payload import PayloadError, parse_payload

RUNNING, KILLED, STOPPED = "running", "killed", "stopped"


class PayloadUnreadable(ValueError):
    """The payload file is missing or is not a GrowthBook SDK payload."""


@dataclass(frozen=True)
class Variation:
    index: int
    name: str
    weight: float


@dataclass(frozen=True)
class ExperimentDefinition:
    key: str
    name: str
    status: str
    feature: str | None = None
    hash_attribute: str | None = None
    coverage: float | None = None
    # Empty when the payload no longer has the rule: the analysis then takes
    # the variations from the exposures and assumes equal weights.
    variations: tuple[Variation, ...] = ()


def load_payload(path: str | Path) -> dict[str, Any]:
    """The payload file, checked as the services check it (flags/payload.py)."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise PayloadUnreadable(f"{path}: can not be read ({exc.strerror})") from None
    try:
        return parse_payload(raw).raw
    except PayloadError as exc:
        raise PayloadUnreadable(f"{path}: {exc}") from None


def experiment_definitions(payload: Mapping[str, Any]) -> dict[str, ExperimentDefinition]:
    """Every experiment rule in the payload, by experiment key."""
    found: dict[str, ExperimentDefinition] = {}
    for feature_key, feature in payload.get("features", {}).items():
        rules = feature.get("rules", []) if isinstance(feature, dict) else []
        for position, rule in enumerate(rules):
            if isinstance(rule, dict) and isinstance(rule.get("variations"), list):
                key = rule.get("key") or feature_key
                found.setdefault(key, _definition(key, feature_key, rule, rules[:position]))
    return found


def definition_for(key: str, payload: Mapping[str, Any]) -> ExperimentDefinition:
    """The experiment as the payload has it, or a stopped one when it is gone."""
    return experiment_definitions(payload).get(key) or ExperimentDefinition(key=key, name=key, status=STOPPED)


def _definition(key: str, feature: str, rule: Mapping[str, Any], before: list[Any]) -> ExperimentDefinition:
    count = len(rule["variations"])
    weights = rule.get("weights") or [1 / count] * count
    meta = rule.get("meta") or []
    variations = tuple(
        Variation(index=i, weight=float(weights[i]),
                  name=str(meta[i].get("name") or meta[i].get("key") or i)
                  if i < len(meta) and isinstance(meta[i], dict) else str(i))
        for i in range(count))
    coverage = float(rule.get("coverage", 1))
    shadowed = any(isinstance(r, dict) and "force" in r and not r.get("condition")
                   and float(r.get("coverage", 1)) >= 1 for r in before)
    status = KILLED if coverage <= 0 or sum(weights) <= 0 or shadowed else RUNNING
    return ExperimentDefinition(key=key, name=str(rule.get("name") or key), status=status, feature=feature,
                                hash_attribute=str(rule.get("hashAttribute", "id")), coverage=coverage,
                                variations=variations)
