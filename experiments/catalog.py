"""The experiments one can report on: metrics.toml joined with the payload.

Metrics are read once; the payload on every call, so a status change (a rule
removed, coverage set to 0) shows at once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from experiments import decisions
from experiments.analysis import MICROS_PER_DAY, ExperimentReport, Exposed, exposure_counts
from experiments.definitions import ExperimentDefinition, definition_for, experiment_definitions, load_payload
from experiments.metrics import METRICS_FILE, ExperimentMetrics, load_metrics
from experiments.stats import SRM_THRESHOLD, srm_p_value
from experiments.store import to_micros
from services.common.config import Settings

NOBODY = Exposed(0, 0, 0)


class UnknownExperiment(LookupError):
    def __init__(self, key: str, known: list[str]) -> None:
        super().__init__(f"unknown experiment {key!r}; known experiments: {', '.join(known)}")
        self.key = key
        self.known = known


@dataclass(frozen=True)
class Summary:
    """An experiment's health at a glance (the list view)."""

    key: str
    name: str
    status: str
    unit: str
    exposures: list[tuple[str, int]]  # (variation name, exposed units), payload order
    srm_p_value: float
    days_running: int | None  # since the first exposure; None before any
    planned_per_variation: int | None  # None without a plan
    progress: float | None  # the smallest variation's complete units over its planned sample

    @property
    def srm_warning(self) -> bool:
        return self.srm_p_value < SRM_THRESHOLD


@dataclass(frozen=True)
class Catalog:
    metrics: dict[str, ExperimentMetrics]
    payload_file: Path
    # Where the payload comes from when not the file: the services' own Flags,
    # refreshed from the GrowthBook API, so the status shown is what they serve.
    live_payload: Callable[[], dict[str, Any]] | None = None

    def payload(self) -> dict[str, Any]:
        return self.live_payload() if self.live_payload else load_payload(self.payload_file)

    @classmethod
    def load(cls, payload_file: str | Path | None = None, metrics_file: Path = METRICS_FILE) -> Catalog:
        path = payload_file or Settings.from_env("experiments").growthbook_payload_file
        return cls(metrics=load_metrics(metrics_file), payload_file=Path(path))

    @property
    def keys(self) -> list[str]:
        return list(self.metrics)

    def get(self, key: str) -> tuple[ExperimentMetrics, ExperimentDefinition]:
        if key not in self.metrics:
            raise UnknownExperiment(key, self.keys)
        return self.metrics[key], definition_for(key, self.payload())

    def report(self, engine: Engine, key: str) -> ExperimentReport:
        return decisions.report(engine, *self.get(key))

    def summaries(self, engine: Engine, now: datetime | None = None) -> list[Summary]:
        payload = self.payload()
        now_us = to_micros(now or datetime.now(UTC))
        found = []
        for key, metrics in self.metrics.items():
            definition = definition_for(key, payload)
            counts = exposure_counts(engine, metrics, now_us)
            names = {v.index: v.name for v in definition.variations} or {i: str(i) for i in sorted(counts)}
            weights = [v.weight for v in definition.variations] or [1 / max(len(names), 1)] * len(names)
            exposed = [counts.get(index, NOBODY) for index in names]
            planned = metrics.plan.sample_per_variation() if metrics.plan else None
            first = min((e.first_us for e in exposed if e.units), default=None)
            found.append(Summary(
                key=key, name=definition.name, status=definition.status, unit=metrics.unit,
                exposures=[(name, e.units) for name, e in zip(names.values(), exposed, strict=True)],
                srm_p_value=srm_p_value([e.units for e in exposed], weights),
                days_running=None if first is None else (now_us - first) // MICROS_PER_DAY,
                planned_per_variation=planned,
                progress=min(e.complete for e in exposed) / planned if planned and exposed else None))
        return found

    def problems(self) -> list[str]:
        """Disagreements between metrics.toml and the payload worth a look."""
        definitions = experiment_definitions(self.payload())
        found = [f"{key}: in the payload but has no metrics in metrics.toml"
                 for key in definitions if key not in self.metrics]
        for key, metrics in self.metrics.items():
            definition = definitions.get(key)
            if definition and definition.hash_attribute != metrics.hash_attribute:
                found.append(f"{key}: the payload hashes on {definition.hash_attribute!r} but metrics.toml "
                             f"analyses by {metrics.unit} ({metrics.hash_attribute!r}): "
                             "no exposure will match")
        return found
