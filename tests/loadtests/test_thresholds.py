"""The threshold checker on small locust stats CSVs, and the run's small parsers."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from loadtests.run import build_parser, seconds
from loadtests.run import main as run_main
from loadtests.stages import parse_stages, target
from loadtests.thresholds import THRESHOLDS_FILE, check, format_table, load_thresholds, read_stats
from services.common.config import ROOT

HEADER = ("Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,"
          "Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,"
          "50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%")

THRESHOLDS = """
[default]
max_failure_ratio = 0.0
p95_ms = 1000

[total]
max_failure_ratio = 0.02

[endpoint."POST /quotes"]
p95_ms = 100
required = true

[endpoint."POST /purchases"]
max_failure_ratio = 0.05
p95_ms = 2000

[endpoint."GET /experiments/[key].json"]
required_by = "GrowthAnalyst"
"""


def stats_csv(tmp_path: Path, rows: list[tuple[str, str, int, int, str]]) -> Path:
    """rows: (type, name, requests, failures, p95)."""
    lines = [HEADER]
    for kind, name, count, failures, p95 in rows:
        lines.append(f"{kind},{name},{count},{failures},10,12.5,3,400,500,5.0,0.0,"
                     f"10,11,12,13,14,{p95},{p95},{p95},{p95},{p95},{p95}")
    path = tmp_path / "run_stats.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def thresholds(tmp_path: Path) -> Path:
    path = tmp_path / "thresholds.toml"
    path.write_text(THRESHOLDS)
    return path


def test_a_run_within_every_limit_passes(tmp_path: Path, thresholds: Path) -> None:
    csv = stats_csv(tmp_path, [("POST", "/quotes", 200, 0, "90"), ("POST", "/purchases", 100, 4, "1500"),
                               ("GET", "/plans", 50, 0, "900"), ("", "Aggregated", 350, 4, "1200")])
    verdicts = check(read_stats(csv), load_thresholds(thresholds), {"Prospect", "TrialOwner"})
    assert [v.stat.key for v in verdicts] == ["GET /plans", "POST /purchases", "POST /quotes", "Aggregated"]
    assert all(v.ok for v in verdicts), format_table(verdicts)
    assert "MISSED" not in format_table(verdicts)


def test_slow_failing_or_missing_endpoints_are_missed(tmp_path: Path, thresholds: Path) -> None:
    csv = stats_csv(tmp_path, [("POST", "/purchases", 100, 6, "2500"), ("GET", "/plans", 50, 1, "100"),
                               ("GET", "/namespaces/[id]/trials/eligibility", 0, 0, "N/A"),
                               ("", "Aggregated", 150, 7, "2000")])
    verdicts = {v.stat.key: v for v in check(read_stats(csv), load_thresholds(thresholds))}
    assert verdicts["POST /purchases"].problems == ("failures 6.00% > 5.00%", "p95 2500 ms > 2000 ms")
    assert verdicts["GET /plans"].problems == ("failures 2.00% > 0.00%",)  # [default]: no failure at all
    assert verdicts["POST /quotes"].problems == ("required but never called",)
    assert verdicts["Aggregated"].problems == ("failures 4.67% > 2.00%",)
    assert verdicts["GET /namespaces/[id]/trials/eligibility"].ok  # not called, not required
    assert verdicts["GET /experiments/[key].json"].problems == ("required but never called",)
    # Required by a profile that did not run: not missed.
    keys = {v.stat.key for v in check(read_stats(csv), load_thresholds(thresholds), {"Prospect"})}
    assert "GET /experiments/[key].json" not in keys
    table = format_table(list(verdicts.values()))
    assert "MISSED: failures 6.00% > 5.00%; p95 2500 ms > 2000 ms" in table
    assert table.splitlines()[0].split() == ["endpoint", "requests", "failures", "p95", "ms", "limit", "result"]


def test_the_versioned_thresholds_cover_the_funnel() -> None:
    limits = load_thresholds(THRESHOLDS_FILE)
    assert limits.total.max_failure_ratio == 0.0
    for key in ("GET /plans", "POST /quotes", "POST /purchases", "GET /namespaces/[id]/trials/eligibility"):
        assert key in limits.endpoints and limits.endpoints[key].p95_ms, key  # its own limit, not [default]
        assert limits.endpoints[key].required or limits.endpoints[key].required_by, key
    assert limits.for_endpoint("GET /something/else") == limits.default


def test_every_threshold_names_a_request_the_locustfile_makes() -> None:
    """A misspelt key would be a limit nothing is ever checked against."""
    source = (ROOT / "loadtests" / "locustfile.py").read_text()
    made = {f"{method} {name}" for method, name in
            re.findall(r'self\.call\(\s*"(\w+)",\s*[^,]+?,\s*"([^"]+)"', source)}
    assert "POST /purchases" in made  # the pattern still reads the locustfile
    assert set(load_thresholds(THRESHOLDS_FILE).endpoints) <= made


def test_durations_and_stages_parse() -> None:
    assert [seconds(s) for s in ("90", "90s", "2m", "1h30m")] == [90, 90, 120, 5400]
    with pytest.raises(argparse.ArgumentTypeError):
        seconds("2 minutes")
    stages = parse_stages("1m:10, 30s:50,10s:0")
    assert stages == [(60.0, 10), (30.0, 50), (10.0, 0)]
    assert target(stages, 0) == (10, 1.0)  # 0 -> 10 users over a minute: at least 1 a second
    assert target(stages, 65) == (50, 40 / 30)
    assert target(stages, 95) == (0, 5.0)
    assert target(stages, 100) is None
    assert parse_stages("") == []
    with pytest.raises(ValueError):
        parse_stages("1m")


def test_a_zero_run_time_or_user_count_is_refused() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="more than zero"):
        seconds("0")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--users", "0"])


def test_a_stack_that_is_not_running_is_said_at_once(capsys: pytest.CaptureFixture[str]) -> None:
    dead = "http://127.0.0.1:9"
    assert run_main(["--checkout-url", dead, "--trials-url", dead, "--stripe-url", dead, "--time", "5s"]) == 2
    assert f"error: {dead}/healthz does not answer" in capsys.readouterr().err
