"""The benchmark's verdicts: a throughput counts only when its requests were answered, and every
target of the performance issue is judged against its own figure."""

from __future__ import annotations

import pytest

from benchmarks.ceiling_report import TELEMETRY_FULL, TELEMETRY_OFF, TOTAL, Result, Run, render, targets


def result(label: str, rps: float, requests: int = 1000, failures: int = 0, p99: float = 20,
           timing: dict[str, float] | None = None) -> Result:
    return Result(label=label, requests=requests, failures=failures, rps=rps, p50=5, p99=p99, size=500,
                  timing=timing or {})


def run(quote: Result | None = None, eligibility: Result | None = None, prospects: Result | None = None,
        telemetry_on: float = 99.0, purchase_project: float = 12.0,
        memory: dict[str, list[float]] | None = None) -> Run:
    purchase = result("POST /purchases", 20, timing={"db": 6, "app": 7, "stripe": 40,
                                                    "project_p50": purchase_project})
    return Run(started="now", info={}, options={"users": 16, "duration": 30, "warmup": 5, "rounds": 2,
                                                "prospect_users": 50, "prospect_time": 120},
               runs={"bare": result("bare", 1000), "floor": result("floor", 700),
                     "quote": quote or result("quote", 600),
                     "eligibility": eligibility or result("eligibility", 600),
                     "lookup": result("lookup", 650)},
               funnel={"POST /purchases": purchase, TOTAL: result(TOTAL, 100)},
               funnel_alone={"POST /purchases": purchase},
               telemetry={TELEMETRY_OFF: [result("off", 100)], TELEMETRY_FULL: [result("on", telemetry_on)]},
               flags={"f": 10.0}, prospects={TOTAL: prospects or result(TOTAL, 5, requests=3000)},
               memory={"checkout": memory or {"20000": [90.0, 91.0], "100000": [90.5, 91.2]}})


def verdict(lines: list[str], starts: str) -> str:
    (line,) = [line for line in lines if line.startswith(f"- {starts}")]
    return line


def test_targets_met_say_so_for_every_target_of_the_issue() -> None:
    lines = targets(run())
    assert len(lines) == 11, lines
    assert all("**MET**" in line for line in lines), [line for line in lines if "**MET**" not in line]
    assert "86% of floor (600 of 700 req/s)" in verdict(lines, "Quote ≥ 80% of floor")
    assert "60% of bare" in verdict(lines, "Quote ≥ 50% of bare")


def test_a_fast_run_of_failed_requests_is_not_met() -> None:
    lines = targets(run(quote=result("quote", 900, failures=1000), prospects=result(TOTAL, 0, requests=0)))
    assert "**MISSED**" in verdict(lines, "Quote ≥ 80% of floor")
    assert "not clean: 1000 failed" in verdict(lines, "Quote ≥ 80% of floor")
    assert "**MISSED**" in verdict(lines, "Quote p99")
    assert "**MET**" in verdict(lines, "Trial eligibility ≥ 80% of floor")
    assert "**MISSED**" in verdict(lines, "Zero failed") and "0 failed of 0 requests" in verdict(lines, "Zero")


def test_each_miss_names_its_figure_and_how_far_off_it_is() -> None:
    lines = targets(run(quote=result("quote", 490), eligibility=result("eligibility", 650, p99=61),
                        telemetry_on=80, purchase_project=31.5))
    assert "70% of floor (490 of 700 req/s), 70 req/s short" in verdict(lines, "Quote ≥ 80% of floor")
    assert "**MISSED**: 49% of bare (490 of 1000 req/s), 10 req/s short" in verdict(lines, "Quote ≥ 50% of bare")
    assert "**MISSED**: 61 ms" in verdict(lines, "Trial eligibility p99")
    assert "**MET**" in verdict(lines, "Trial eligibility ≥ 80% of floor")
    assert "**MISSED**: 31.5 ms" in verdict(lines, "Purchase, 16 buyers at once")
    assert "**MISSED**: 20.0% (100 → 80 req/s" in verdict(lines, "Funnel telemetry")


def test_memory_that_grows_between_readings_is_a_miss_even_under_the_ceiling() -> None:
    grown = targets(run(memory={"20000": [80.0, 80.0], "100000": [80.0, 84.0]}))
    assert "**MISSED**" in verdict(grown, "checkout worker memory") and "+5.0%" in verdict(grown, "checkout")
    heavy = targets(run(memory={"20000": [151.0, 80.0], "100000": [151.0, 80.0]}))
    assert "**MISSED**" in verdict(heavy, "checkout worker memory")


def test_the_report_carries_the_targets_and_a_row_per_endpoint_against_bare_and_floor() -> None:
    text = render(run())
    assert "## Targets" in text
    assert "| checkout `POST /quotes` | 600 | 5 | 20 | 60% | 86% |" in text


def test_the_benchmark_refuses_a_negative_time_before_it_builds_anything() -> None:
    from benchmarks.ceiling import build_parser

    assert build_parser().parse_args(["--prospect-time", "0"]).prospect_time == 0
    for option in ("--prospect-time", "--warmup"):
        with pytest.raises(SystemExit):
            build_parser().parse_args([option, "-5"])
