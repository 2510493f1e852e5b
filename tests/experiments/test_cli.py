"""`python -m experiments`: report in text, JSON and HTML, list, migrate, collect."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from experiments.cli import main
from persistence.db import make_engine
from services.checkout.adapters.models import FunnelEventRow as CheckoutEvent
from services.common.config import ROOT
from tests.experiments.helpers import KEY, T0, EventWriter, write_smb_experiment
from tests.support import sqlite_url


@pytest.fixture
def env(store_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("EXPERIMENTS_DATABASE_URL", store_url)
    monkeypatch.delenv("GROWTHBOOK_PAYLOAD_FILE", raising=False)
    return store_url


@pytest.fixture
def smb(env: str, writer: EventWriter) -> None:
    write_smb_experiment(writer)


def test_text_report(smb: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", KEY]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{KEY}: SMB discount prompt on the checkout page\n")
    sections = [[" ".join(line.split()) for line in section.splitlines()] for section in out.split("\n\n")]
    plan, verdict, table, counts, definitions, comparison, warnings = sections[1:]
    assert plan[0].startswith("PLAN: Prompting small teams") and plan[1].startswith("primary revenue")
    assert verdict[0].startswith("VERDICT Prompt: KEEP COLLECTING")
    assert table[1].startswith("primary Revenue per exposed unit 1")
    assert counts[0].startswith("Funnel (descriptive") and counts[1:] == ["No prompt (control) Prompt", "Exposed units 10 10", "Chose a plan 4 (40.0%) 6 (60.0%)",
                      "Added a card 2 (20.0%) 3 (30.0%)", "Purchased 1 (10.0%) 2 (20.0%)"]
    assert definitions[-1] == ("Purchased: a `purchase_completed` event at or after the first exposure and "
                               "within 14 days of the first exposure, whatever the other steps did")
    assert comparison[:2] == ["Prompt vs No prompt", "step uplift 95% CI p-value chance to win"]
    assert [line.split(" [")[0] for line in comparison[2:]] == [
        "Chose a plan +50.0%", "Added a card +50.0%", "Purchased +100.0%"]
    assert warnings == ["SRM p-value 1 (expected 50/50, observed 50/50): OK"]


def test_json_report(smb: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", KEY, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["key"] == KEY and data["status"] == "running" and data["unit"] == "user"
    assert [v["name"] for v in data["variations"]] == ["No prompt", "Prompt"]
    assert [[s["units"] for s in v["steps"]] for v in data["variations"]] == [[4, 2, 1], [6, 3, 2]]
    assert [c["uplift"] for c in data["comparisons"]] == pytest.approx([0.5, 0.5, 1.0])
    assert data["srm_warning"] is False and data["multi_variant_units"] == 0


def test_html_report_is_one_self_contained_page(smb: None, tmp_path: Path) -> None:
    output = tmp_path / "report.html"
    assert main(["report", KEY, "--format", "html", "--output", str(output)]) == 0
    html = output.read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>") and "<style>" in html
    assert html.count("<svg") >= 2 + 3  # a funnel per variation, an interval per comparison
    assert "4 · 40.0%" in html and "6 · 60.0%" in html  # funnel bars with counts and rates
    assert "+50.0%" in html and "Chance to win" in html
    for external in ("<script", "<link", "src=", "http://", "https://", "url("):
        assert external not in html
    assert "Sample ratio mismatch" not in html


def test_html_report_shouts_about_srm_and_flags_multi_variant_units(env: str, writer: EventWriter,
                                                                     tmp_path: Path) -> None:
    for unit in range(1, 301):
        writer.exposure(unit, 0 if unit <= 200 else 1, experiment=KEY)
    writer.exposure(1, 1, T0 + timedelta(days=1), experiment=KEY)
    writer.save()
    output = tmp_path / "report.html"
    assert main(["report", KEY, "--format", "html", "--output", str(output)]) == 0
    html = output.read_text(encoding="utf-8")
    assert 'class="alert danger" role="alert"' in html and "Sample ratio mismatch" in html
    assert "67/33" in html
    assert "1 user saw more than one variation" in html


def test_unknown_experiment_exits_2_and_lists_the_known_ones(env: str, capsys: pytest.CaptureFixture[str],
                                                              ) -> None:
    assert main(["report", "no-such-experiment"]) == 2
    err = capsys.readouterr().err
    assert "unknown experiment 'no-such-experiment'" in err
    assert "smb-discount-prompt, default-seats, ultimate-trial-length, duo-pro-upsell" in err


def test_list(smb: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out] == [KEY, "default-seats", "ultimate-trial-length", "duo-pro-upsell"]
    days = (datetime.now(UTC) - T0).days  # the helpers' events are from T0
    assert " ".join(out[0].split()) == f"{KEY} running user split ok 0% of plan {days}d No prompt 10, Prompt 10"


def test_csv_report(smb: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", KEY, "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    funnel = [(r["variation"], r["metric"], r["value"]) for r in rows if r["section"] == "funnel"]
    assert funnel[-1] == ("1", "purchase_completed", "0.2")
    [verdict] = [r for r in rows if r["section"] == "verdict"]
    assert (verdict["metric"], verdict["variation_name"], verdict["verdict"]) == ("revenue", "Prompt",
                                                                                  "keep collecting")
    assert {r["role"] for r in rows if r["section"] == "metric"} == {"primary", "secondary", "guardrail"}


def test_a_store_that_is_not_migrated_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("EXPERIMENTS_DATABASE_URL", sqlite_url(tmp_path / "empty.db"))
    assert main(["report", KEY]) == 1
    assert "run `python -m experiments migrate`" in capsys.readouterr().err


def test_migrate_then_collect_from_the_services(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                fresh_db: Callable[[str], str],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    store_url = sqlite_url(tmp_path / "var" / "experiments.db")
    monkeypatch.setenv("EXPERIMENTS_DATABASE_URL", store_url)
    urls = {service: fresh_db(service) for service in ("checkout", "trials", "notifications")}
    for service, url in urls.items():
        monkeypatch.setenv(f"{service.upper()}_DATABASE_URL", url)
    checkout = make_engine(urls["checkout"])
    with Session(checkout) as session:
        session.add(CheckoutEvent(event_id="2" * 36, service="checkout", step="plan_chosen", user_id=1,
                                  namespace_id=100, occurred_at=T0, properties={}, experiments={}, traffic="real"))
        session.commit()
    checkout.dispose()
    assert main(["migrate"]) == 0
    store: Engine = make_engine(store_url)
    assert {"events", "collector_checkpoints"} <= set(inspect(store).get_table_names())
    store.dispose()
    assert main(["collect"]) == 0
    assert "collected 1 events" in capsys.readouterr().out


def test_python_m_experiments_runs_the_cli() -> None:
    done = subprocess.run([sys.executable, "-m", "experiments", "report", "nope"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "known experiments: smb-discount-prompt" in done.stderr


def test_collect_names_the_sources_it_could_not_read_and_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    store_url = sqlite_url(tmp_path / "experiments.db")
    monkeypatch.setenv("EXPERIMENTS_DATABASE_URL", store_url)
    for service in ("checkout", "trials", "notifications"):  # databases that were never migrated
        monkeypatch.setenv(f"{service.upper()}_DATABASE_URL", sqlite_url(tmp_path / f"{service}.db"))
    assert main(["migrate"]) == 0
    assert main(["collect"]) == 1
    out, err = capsys.readouterr()
    assert "collected 0 events; checkout, trials, notifications failed" in out
    assert err.count("error: can not collect from") == 3 and "Traceback" not in err


def test_a_report_that_can_not_be_written_is_a_clear_error(smb: None, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", KEY, "--output", str(tmp_path / "missing" / "r.html")]) == 1
    assert "error: can not write" in capsys.readouterr().err


def test_a_bad_dashboard_port_is_a_clear_error(monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("EXPERIMENTS_PORT", "abc")
    assert main(["serve"]) == 2
    assert "EXPERIMENTS_PORT must be a port number" in capsys.readouterr().err
