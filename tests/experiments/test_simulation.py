"""Simulated experiments: a real effect is found, a broken split is caught."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy.engine import Engine

from experiments.analysis import ExperimentReport, analyse
from experiments.metrics import FunnelStep
from tests.experiments.helpers import T0, EventWriter, fifty_fifty, user_metrics

PURCHASE = (FunnelStep("purchase_completed", "Purchased"),)
BASE_RATE = 0.10
LIFT = 0.20


def simulate(writer: EventWriter, store: Engine, units: int, share_in_treatment: float, seed: int,
             ) -> ExperimentReport:
    """`units` users split at random; the treatment converts 20% more often (relative)."""
    rng = random.Random(seed)
    for unit in range(1, units + 1):
        variation = 1 if rng.random() < share_in_treatment else 0
        at = T0 + timedelta(seconds=unit)
        writer.exposure(unit, variation, at)
        if rng.random() < BASE_RATE * (1 + LIFT * variation):
            writer.add("purchase_completed", at + timedelta(hours=rng.randint(1, 100)), user=unit)
    writer.save()
    return analyse(store, user_metrics(window_days=7, steps=PURCHASE), fifty_fifty())


def test_a_true_twenty_percent_uplift_is_detected_without_srm(writer: EventWriter, store: Engine) -> None:
    report = simulate(writer, store, units=40_000, share_in_treatment=0.5, seed=20261121)
    [comparison] = report.comparisons
    assert comparison.p_value is not None and comparison.p_value < 0.05
    assert comparison.chance_to_win is not None and comparison.chance_to_win > 0.95
    assert comparison.ci_low is not None and comparison.ci_high is not None
    assert comparison.ci_low < LIFT < comparison.ci_high
    assert not report.srm_warning and report.srm_p_value > 0.001
    assert 19_000 < report.variations[0].units < 21_000


def test_a_sixty_forty_split_of_a_fifty_fifty_experiment_raises_the_srm_warning(
        writer: EventWriter, store: Engine) -> None:
    report = simulate(writer, store, units=10_000, share_in_treatment=0.4, seed=7)
    assert report.srm_warning and report.srm_p_value < 0.001
