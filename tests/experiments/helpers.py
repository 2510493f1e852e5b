"""Helpers for the experiment tests: an event writer and small experiment definitions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Engine

from experiments.definitions import RUNNING, ExperimentDefinition, Variation
from experiments.metrics import ExperimentMetrics, FunnelStep
from experiments.store import events, exposure_columns, to_micros

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


class EventWriter:
    """Writes events straight into the store, as the collector would have copied them."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.rows: list[dict[str, Any]] = []

    def exposure(self, unit: int, variation: int, at: datetime = T0, *, experiment: str = "exp",
                 hash_attribute: str = "id", traffic: str = "real", service: str = "checkout") -> None:
        user, namespace = (unit, None) if hash_attribute == "id" else (7, unit)
        self.add("experiment_viewed", at, user=user, namespace=namespace, traffic=traffic, service=service,
                 experiment=experiment, variation=variation, variation_name=f"variation {variation}",
                 feature=f"{experiment}-feature", hash_attribute=hash_attribute, hash_value=str(unit))

    def add(self, step: str, at: datetime = T0, *, user: int | None = None, namespace: int | None = None,
            traffic: str = "real", service: str = "checkout", **properties: Any) -> None:
        event_id = str(uuid.uuid4())
        self.rows.append({
            "event_id": event_id, "service": service, "source_id": len(self.rows) + 1, "step": step,
            "user_id": user, "namespace_id": namespace, "occurred_at": at, "occurred_us": to_micros(at),
            "properties": properties, "experiments": {}, "traffic": traffic,
            **exposure_columns(step, properties, user, namespace, event_id)})

    def save(self) -> None:
        with self.engine.begin() as conn:
            for start in range(0, len(self.rows), 10_000):
                conn.execute(insert(events), self.rows[start:start + 10_000])
        self.rows = []


CHECKOUT_FUNNEL = (FunnelStep("plan_chosen", "Chose a plan"), FunnelStep("card_captured", "Added a card"),
                   FunnelStep("purchase_completed", "Purchased"))


def user_metrics(window_days: int = 7, steps: tuple[FunnelStep, ...] = CHECKOUT_FUNNEL) -> ExperimentMetrics:
    return ExperimentMetrics(key="exp", unit="user", window_days=window_days, steps=steps)


def fifty_fifty(*names: str) -> ExperimentDefinition:
    names = names or ("Control", "Treatment")
    return ExperimentDefinition(
        key="exp", name="An experiment", status=RUNNING, feature="exp-feature", hash_attribute="id",
        coverage=1.0, variations=tuple(Variation(i, n, 1 / len(names)) for i, n in enumerate(names)))


def days(n: float) -> timedelta:
    return timedelta(days=n)


KEY = "smb-discount-prompt"
# (units, chose a plan, added a card, purchased) per variation.
COUNTS = {0: (10, 4, 2, 1), 1: (10, 6, 3, 2)}


def write_smb_experiment(writer: EventWriter) -> None:
    unit = 0
    for variation, (units, *steps) in COUNTS.items():
        for i in range(units):
            unit += 1
            writer.exposure(unit, variation, experiment=KEY)
            for step, reached in zip(("plan_chosen", "card_captured", "purchase_completed"), steps, strict=True):
                if i < reached:
                    writer.add(step, T0 + timedelta(hours=1), user=unit)
    writer.save()
