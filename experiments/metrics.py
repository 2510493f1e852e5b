"""Metric definitions as data (experiments/metrics.toml): per experiment, the
unit of analysis, the ordered funnel steps and the conversion window."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from experiments.store import EXPOSURE_STEP
from flags.payload import NAMESPACE_ID, USER_ID
from services.common.telemetry import Step

METRICS_FILE = Path(__file__).resolve().parent / "metrics.toml"
# unit of analysis -> the hash attribute its exposures carry, and the event column holding its id.
HASH_ATTRIBUTE = {"user": USER_ID, "namespace": NAMESPACE_ID}
UNIT_COLUMN = {"user": "user_id", "namespace": "namespace_id"}
MAX_WINDOW_DAYS = 366
PROPERTY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

Filter = str | int | bool


class MetricsError(ValueError):
    """metrics.toml is not valid; the message says where and why."""


@dataclass(frozen=True)
class FunnelStep:
    step: str
    label: str
    where: Mapping[str, Filter] = field(default_factory=dict)


@dataclass(frozen=True)
class ExperimentMetrics:
    key: str
    unit: str
    window_days: int
    steps: tuple[FunnelStep, ...]

    @property
    def hash_attribute(self) -> str:
        return HASH_ATTRIBUTE[self.unit]


def load_metrics(path: Path = METRICS_FILE) -> dict[str, ExperimentMetrics]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MetricsError(f"{path}: can not be read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise MetricsError(f"{path}: not valid TOML ({exc})") from None
    return parse_metrics(data, str(path.name))


def parse_metrics(data: Mapping[str, Any], source: str = "metrics.toml") -> dict[str, ExperimentMetrics]:
    unknown = set(data) - {"experiments"}
    if unknown:
        raise MetricsError(f"{source}: unknown top-level key(s) {sorted(unknown)}; "
                           "expected [experiments.<key>] tables")
    experiments = data.get("experiments")
    if not isinstance(experiments, dict) or not experiments:
        raise MetricsError(f"{source}: no experiments; define at least one [experiments.<key>] table")
    return {key: _experiment(f"{source}: experiments.{key}", key, spec) for key, spec in experiments.items()}


def _experiment(where: str, key: str, spec: Any) -> ExperimentMetrics:
    if not isinstance(spec, dict):
        raise MetricsError(f"{where}: must be a table")
    unknown = set(spec) - {"unit", "window_days", "steps"}
    if unknown:
        raise MetricsError(f"{where}: unknown key(s) {sorted(unknown)}; expected unit, window_days, steps")
    unit = spec.get("unit")
    if unit not in HASH_ATTRIBUTE:
        raise MetricsError(f"{where}.unit: must be one of {sorted(HASH_ATTRIBUTE)}, not {unit!r}")
    window = spec.get("window_days")
    if isinstance(window, bool) or not isinstance(window, int) or not 1 <= window <= MAX_WINDOW_DAYS:
        raise MetricsError(f"{where}.window_days: must be a whole number of days from 1 to "
                           f"{MAX_WINDOW_DAYS}, not {window!r}")
    steps = spec.get("steps")
    if not isinstance(steps, list) or not steps:
        raise MetricsError(f"{where}.steps: must be a non-empty list of {{ step = ..., label = ... }}")
    return ExperimentMetrics(key=key, unit=unit, window_days=window,
                             steps=tuple(_step(f"{where}.steps[{i}]", s) for i, s in enumerate(steps)))


def _step(where: str, spec: Any) -> FunnelStep:
    if not isinstance(spec, dict):
        raise MetricsError(f"{where}: must be an inline table {{ step = ..., label = ... }}")
    unknown = set(spec) - {"step", "label", "where"}
    if unknown:
        raise MetricsError(f"{where}: unknown key(s) {sorted(unknown)}; expected step, label, where")
    step = spec.get("step")
    known = sorted(s.value for s in Step if s.value != EXPOSURE_STEP)
    if step == EXPOSURE_STEP:
        raise MetricsError(f"{where}.step: {EXPOSURE_STEP} is the exposure itself, not a funnel step")
    if step not in known:
        raise MetricsError(f"{where}.step: unknown step {step!r}; known steps: {', '.join(known)}")
    label = spec.get("label", step)
    if not isinstance(label, str) or not label.strip():
        raise MetricsError(f"{where}.label: must be a non-empty string")
    filters = spec.get("where", {})
    if not isinstance(filters, dict):
        raise MetricsError(f"{where}.where: must be a table of property = value")
    for name, value in filters.items():
        if not PROPERTY_NAME.fullmatch(name):
            raise MetricsError(f"{where}.where: {name!r} is not a property name (letters, digits, _)")
        if not isinstance(value, str | int | bool):
            raise MetricsError(f"{where}.where.{name}: must be a string, integer or boolean, not {value!r}")
    return FunnelStep(step=step, label=label.strip(), where=dict(filters))
