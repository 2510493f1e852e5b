"""The benchmark's verdicts: a throughput counts only when its requests were answered."""

from __future__ import annotations

from benchmarks.ceiling_report import TELEMETRY_FULL, TELEMETRY_OFF, TOTAL, Result, Run, targets


def result(label: str, rps: float, requests: int = 1000, failures: int = 0) -> Result:
    return Result(label=label, requests=requests, failures=failures, rps=rps, p50=5, p99=20, size=500, timing={})


def run(quote: Result, prospects: Result, telemetry_on: float = 99.0) -> Run:
    return Run(started="now", info={}, options={"prospect_users": 50, "prospect_time": 120},
               runs={"bare": result("bare", 1000), "quote": quote, "eligibility": result("eligibility", 600),
                     "lookup": result("lookup", 700)},
               telemetry={TELEMETRY_OFF: [result("off", 100)], TELEMETRY_FULL: [result("on", telemetry_on)]},
               flags={"f": 10.0}, prospects={TOTAL: prospects})


def test_targets_met_say_so_without_excuses() -> None:
    lines = targets(run(result("quote", 600), result(TOTAL, 5, requests=3000)))
    assert all("**MET**" in line for line in lines) and len(lines) == 5
    assert not any("Why:" in line for line in lines)


def test_a_fast_run_of_failed_requests_is_not_met() -> None:
    quote, elig, telemetry, flags, prospects = targets(
        run(result("quote", 900, failures=1000), result(TOTAL, 0, requests=0)))
    assert "**MISSED**" in quote and "quote 1000 of 1000 failed" in quote
    assert "**MET**" in elig and "**MET**" in telemetry and "**MET**" in flags
    assert "**MISSED**" in prospects and "0 failed of 0 requests" in prospects


def test_a_missed_target_gives_its_reason() -> None:
    quote = targets(run(result("quote", 200), result(TOTAL, 5), telemetry_on=80))
    assert "**MISSED**" in quote[0] and "30 points" in quote[0] and "Why:" in quote[0]
    assert "**MISSED**" in quote[2] and "20.0%" in quote[2] and "Why:" in quote[2]
