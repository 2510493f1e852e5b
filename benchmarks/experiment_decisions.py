"""Benchmark: can a growth team trust the decisions? Simulations that print
numbers (not timed tests), all read with the analysis' own statistics
(experiments.stats, which call gbstats).

    make bench-decisions          # writes benchmarks/results/experiment_decisions.md

1. A/A: 1,000 experiments with no true effect, 200 units per arm per day at a
   10% conversion rate, read every day for 30 days. How many ever look
   significant: naive fixed-horizon reads every day, one fixed-horizon read on
   day 30, gbstats' sequential test every day, and the plan's rule
   (sequential daily while collecting at a fifth of alpha, one fixed-horizon
   read at the rest of it once the planned sample, day 30's, is in).
2. Revenue: +10% order value, the same 10% conversion. How often revenue per
   exposed unit finds it, and how often conversion does (it should not: there
   is nothing to find).
3. CUPED: revenue per unit with a year of pre-exposure revenue; the variance
   gbstats' regression adjustment takes away, and the interval it narrows.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from experiments.metrics import load_metrics
from experiments.plan import EARLY_STOP_SHARE
from experiments.stats import Sums, cuped, proportion, sample_mean, t_test, variance_reduction

RESULTS = Path(__file__).resolve().parent / "results" / "experiment_decisions.md"
ALPHA = 0.05
FINAL_ALPHA = ALPHA * (1 - EARLY_STOP_SHARE)  # the plan's fixed-horizon read at the planned sample


def aa_false_positives(experiments: int, days: int, per_day: int, rate: float, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    # Daily conversions per arm, cumulated: every read sees all units so far.
    conversions = rng.binomial(per_day, rate, size=(experiments, 2, days)).cumsum(axis=2)
    units = per_day * np.arange(1, days + 1)
    planned_total = 2 * per_day * days  # the plan's sample is day 30's: the sequential test is tuned to it
    early, final_alpha = ALPHA * EARLY_STOP_SHARE, FINAL_ALPHA
    counts = dict.fromkeys(("naive", "final", "sequential", "unsplit", "plan"), 0)
    for e in range(experiments):
        hits = dict.fromkeys(counts, False)
        for d in range(days):
            a = proportion(Sums(int(units[d]), float(conversions[e, 0, d]), 0.0))
            b = proportion(Sums(int(units[d]), float(conversions[e, 1, d]), 0.0))
            fixed = t_test(a, b, sequential=False).p_value or 1.0
            sequential = t_test(a, b, sequential=True, tuning=planned_total).p_value or 1.0
            hits["naive"] |= fixed < ALPHA
            hits["sequential"] |= sequential < ALPHA
            if d < days - 1:  # collecting: only sequential reads may stop the experiment
                hits["unsplit"] |= sequential < ALPHA
                hits["plan"] |= (t_test(a, b, sequential=True, alpha=early, tuning=planned_total).p_value
                                 or 1.0) < early
            else:  # the planned sample is in: one fixed-horizon read
                hits["final"] |= fixed < ALPHA
                hits["unsplit"] |= fixed < ALPHA
                hits["plan"] |= fixed < final_alpha  # a fixed-horizon p-value does not depend on alpha
        for name, hit in hits.items():
            counts[name] += hit
    labels = {
        "naive": "naive: fixed-horizon p < 0.05, read daily",
        "final": "one fixed-horizon read on day 30 only",
        "sequential": "sequential p < 0.05, read daily",
        "unsplit": "sequential daily, then fixed at the planned sample, both at 0.05",
        "plan": f"**the plan's rule**: sequential daily at {early:g}, fixed at the planned sample "
                f"at {final_alpha:g}",
    }
    return {labels[name]: n / experiments for name, n in counts.items()}


def sums(x: np.ndarray, y: np.ndarray | None = None) -> Sums:
    y = np.zeros_like(x) if y is None else y
    return Sums(len(x), float(x.sum()), float(x @ x), float(y.sum()), float(y @ y), float(x @ y))


def revenue_effect(simulations: int, per_arm: int, rate: float, lift: float, seed: int) -> dict[str, float]:
    """Order values: gamma with mean $1,740 (5 Premium seats) and a 50% coefficient of variation."""
    rng = np.random.default_rng(seed)
    shape, scale = 4.0, 174_000 / 4.0
    found = {"revenue per exposed unit": 0, "conversion": 0}
    uplifts = []
    for _ in range(simulations):
        arms = []
        for treated in (0, 1):
            bought = rng.random(per_arm) < rate
            value = rng.gamma(shape, scale * (1 + lift * treated), per_arm) * bought
            arms.append((bought.astype(float), value))
        revenue = t_test(sample_mean(sums(arms[0][1])), sample_mean(sums(arms[1][1])), sequential=False)
        conversion = t_test(proportion(sums(arms[0][0])), proportion(sums(arms[1][0])), sequential=False)
        found["revenue per exposed unit"] += (revenue.p_value or 1.0) < FINAL_ALPHA
        found["conversion"] += (conversion.p_value or 1.0) < FINAL_ALPHA
        uplifts.append(revenue.uplift or 0.0)
    return {**{k: v / simulations for k, v in found.items()},
            "mean measured revenue uplift": float(np.mean(uplifts))}


def cuped_reduction(per_arm: int, seed: int) -> dict[str, float]:
    """Existing customers (60%) spend a stable amount per year, with noise; new ones have no history."""
    rng = np.random.default_rng(seed)
    arms = []
    for treated in (0, 1):
        customer = rng.random(per_arm) < 0.6
        habit = rng.gamma(2.0, 50_000, per_arm) * customer
        pre = habit * rng.lognormal(0, 0.3, per_arm)
        post = habit * rng.lognormal(0, 0.3, per_arm) * (1.05 if treated else 1.0) \
            + (rng.random(per_arm) < 0.05) * rng.gamma(4.0, 40_000, per_arm)
        arms.append(sums(post, pre))
    plain = (sample_mean(arms[0]), sample_mean(arms[1]))
    adjusted = cuped(arms[0], arms[1])
    assert adjusted is not None
    before, after = t_test(*plain, sequential=False), t_test(*adjusted, sequential=False)
    width = (after.ci_high - after.ci_low) / (before.ci_high - before.ci_low)  # type: ignore[operator]
    return {"variance reduction": variance_reduction(plain, adjusted), "interval width ratio": width,
            "p-value without CUPED": before.p_value or 1.0, "p-value with CUPED": after.p_value or 1.0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiments", type=int, default=1000)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    aa = aa_false_positives(args.experiments, days=30, per_day=200, rate=0.10, seed=18)
    aa_seconds = time.perf_counter() - started
    plan = load_metrics()["smb-discount-prompt"].plan
    assert plan is not None
    per_arm = plan.sample_per_variation()
    revenue = revenue_effect(200, per_arm=per_arm, rate=0.10, lift=0.10, seed=1810)
    variance = cuped_reduction(per_arm=20_000, seed=181)
    took = time.perf_counter() - started
    lines = [
        "# Experiment decisions: simulated false positives, a revenue effect, CUPED",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()}: {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}. "
        f"Command: `make bench-decisions`. Took {took:.0f} s (A/A part {aa_seconds:.0f} s). "
        "Every test is `experiments.stats` calling gbstats 0.8.0.",
        "",
        f"## A/A: {args.experiments:,} experiments, no true effect, read daily for 30 days",
        "",
        "200 units per arm per day, 10% conversion in both arms; the planned sample (6,000 per arm) is "
        "day 30's, and the sequential test is tuned to it.",
        "A false positive is an experiment that looked significant (p < 0.05) on at least one read.",
        "",
        "| reading | false-positive rate |",
        "|---|---:|",
        *(f"| {name} | {rate:.1%} |" for name, rate in aa.items()),
        "",
        "## +10% revenue per unit, conversion unchanged",
        "",
        f"200 simulated experiments of {per_arm:,} units per arm (the smb-discount-prompt plan's sample "
        "for a 10% effect on revenue at 80% power), 10% buy in both arms, the treatment's orders are worth "
        "10% more (gamma-distributed order values, mean $1,740). Share of experiments where each metric is "
        f"significant at the planned sample (fixed-horizon, p < {FINAL_ALPHA:g} as the plan reads it):",
        "",
        "| metric | significant |",
        "|---|---:|",
        f"| revenue per exposed unit (the effect) | {revenue['revenue per exposed unit']:.1%} |",
        f"| conversion (no effect to find) | {revenue['conversion']:.1%} |",
        "",
        f"Mean measured revenue uplift: {revenue['mean measured revenue uplift']:+.1%} (true: +10.0%).",
        "",
        "## CUPED on revenue per unit",
        "",
        "20,000 units per arm; 60% are existing customers whose yearly spend before exposure predicts their "
        "spend after it; a +5% effect. gbstats' `RegressionAdjustedStatistic` with the pooled theta:",
        "",
        "| | value |",
        "|---|---:|",
        f"| variance of the difference removed | {variance['variance reduction']:.1%} |",
        f"| interval width, adjusted / plain | {variance['interval width ratio']:.2f} |",
        f"| p-value without CUPED | {variance['p-value without CUPED']:.3g} |",
        f"| p-value with CUPED | {variance['p-value with CUPED']:.3g} |",
        "",
    ]
    text = "\n".join(lines)
    sys.stdout.write(text)
    args.output.write_text(text, encoding="utf-8")
    print(f"written to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
