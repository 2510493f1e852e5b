"""A GrowthBook SDK payload: checked, then compiled once for the SDK's evaluator.

The payload is the JSON GrowthBook's API serves (`/api/features/<client key>`).
Beyond what the SDK parses, the checks here refuse what would silently break an
experiment: weights that do not add up, a coverage out of range, or hashing on
an attribute the services do not all know.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from growthbook.common_types import GlobalContext, Options, features_from_dict

# Attribute names used for hashing: user-level and namespace-level experiments.
USER_ID = "id"
NAMESPACE_ID = "namespace_id"


class PayloadError(ValueError):
    """The payload is not a usable GrowthBook SDK payload."""


@dataclass(frozen=True)
class Payload:
    raw: dict[str, Any]
    global_ctx: GlobalContext
    version: str


def _check_rule(feature: str, index: int, rule: Any) -> None:
    where = f"features.{feature}.rules[{index}]"
    if not isinstance(rule, dict):
        raise PayloadError(f"{where} is not an object")
    if "variations" not in rule:
        return
    variations = rule["variations"]
    if not isinstance(variations, list) or len(variations) < 2:
        raise PayloadError(f"{where}.variations needs at least two values")
    weights = rule.get("weights")
    if weights is not None:
        if (not isinstance(weights, list) or len(weights) != len(variations)
                or not all(isinstance(w, int | float) and w >= 0 for w in weights)):
            raise PayloadError(f"{where}.weights must be one non-negative number per variation")
        if abs(sum(weights) - 1) > 0.001:
            raise PayloadError(f"{where}.weights must add up to 1 (they add up to {sum(weights):g})")
    coverage = rule.get("coverage", 1)
    if not isinstance(coverage, int | float) or not 0 <= coverage <= 1:
        raise PayloadError(f"{where}.coverage must be between 0 and 1")
    if rule.get("hashAttribute", USER_ID) not in (USER_ID, NAMESPACE_ID):
        raise PayloadError(f"{where}.hashAttribute must be {USER_ID!r} or {NAMESPACE_ID!r}: "
                           "assignment hashes a stable id every service knows")
    meta = rule.get("meta")
    if meta is not None and (not isinstance(meta, list) or len(meta) != len(variations)):
        raise PayloadError(f"{where}.meta must have one entry per variation")


def parse_payload(raw: str | bytes | dict[str, Any]) -> Payload:
    """Validate and compile a payload; PayloadError says what is wrong."""
    if isinstance(raw, str | bytes):
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise PayloadError(f"not JSON: {exc}") from None
    else:
        data = raw
    if not isinstance(data, dict) or not isinstance(data.get("features"), dict):
        raise PayloadError("a payload is an object with a 'features' object")
    for key, feature in data["features"].items():
        if not isinstance(feature, dict):
            raise PayloadError(f"features.{key} is not an object")
        rules = feature.get("rules", [])
        if not isinstance(rules, list):
            raise PayloadError(f"features.{key}.rules is not a list")
        for index, rule in enumerate(rules):
            _check_rule(key, index, rule)
    saved_groups = data.get("savedGroups") or {}
    if not isinstance(saved_groups, dict):
        raise PayloadError("savedGroups is not an object")
    try:
        features = features_from_dict(data["features"])
    except Exception as exc:  # the SDK's own parsing: anything it refuses is a bad payload
        raise PayloadError(f"the GrowthBook SDK refused it: {exc}") from None
    global_ctx = GlobalContext(options=Options(api_host=None), features=features, saved_groups=saved_groups)
    return Payload(raw=data, global_ctx=global_ctx, version=str(data.get("dateUpdated", "")))
