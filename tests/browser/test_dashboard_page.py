"""The growth dashboard in Chromium: sign in through the identity provider as
someone in the growth group, find the
experiment in the list, read its report (funnel chart per variation, uplift,
p-value, chance to win) and see the sample-ratio warning when the split is off."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from experiments.dashboard import create_app
from experiments.store import upgrade
from persistence.db import make_engine
from services.common.config import Settings
from tests.browser.conftest import QuietHandler
from tests.browser.helpers import log_in_at_provider
from tests.experiments.helpers import KEY, T0, EventWriter
from tests.support import TEST_SECRET, LiveServer, sqlite_url

GINA = 8  # in the provider's platform/growth group (tests/browser/conftest.py)


@pytest.fixture(scope="module")
def store_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("store") / "experiments.db"
    upgrade(sqlite_url(path))
    return path


def write_funnel(url: str, control: int, treatment: int) -> None:
    """`control` and `treatment` users exposed; a third of each chose a plan, a
    tenth bought (the treatment a little more often)."""
    engine = make_engine(url)
    writer = EventWriter(engine)
    for unit in range(1, control + treatment + 1):
        variation = 0 if unit <= control else 1
        writer.exposure(unit, variation, experiment=KEY)
        if unit % 3 == 0:
            writer.add("plan_chosen", T0 + timedelta(hours=1), user=unit)
            writer.add("card_captured", T0 + timedelta(hours=2), user=unit)
            if unit % (4 if variation else 5) == 0:
                writer.add("purchase_completed", T0 + timedelta(hours=3), user=unit)
    writer.save()
    engine.dispose()


@pytest.fixture
def dashboard(request: pytest.FixtureRequest, store_template: Path, tmp_path: Path,
              identity_provider: str) -> Iterator[str]:
    split: tuple[int, int] = request.param
    path = tmp_path / "experiments.db"
    shutil.copy(store_template, path)
    write_funnel(sqlite_url(path), *split)
    app = create_app(Settings(service="experiments", database_url=sqlite_url(path),
                              auth_secret=TEST_SECRET, environment="test", oidc_issuer=identity_provider,
                              oidc_role_map={"platform/growth": "growth"}))
    server = LiveServer(app, QuietHandler)
    yield server.url
    server.stop()
    app.extensions["experiments_store"].dispose()


def sign_in(page: Page, url: str, user_id: int = GINA) -> None:
    page.goto(url + "/")
    page.get_by_role("link", name="Sign in").click()
    log_in_at_provider(page, user_id)


@pytest.mark.parametrize("dashboard", [(300, 300)], indirect=True)
def test_a_growth_analyst_reads_a_report(page: Page, dashboard: str) -> None:
    sign_in(page, dashboard)
    row = page.get_by_role("row").filter(has_text=KEY)
    expect(row).to_contain_text("running")
    expect(row).to_contain_text("No prompt: 300")
    row.get_by_role("link").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("SMB discount prompt on the checkout page")
    charts = page.locator(".funnels figure.funnel svg[role=img]")
    expect(charts).to_have_count(2)  # one funnel chart per variation
    expect(page.locator(".funnels figure.funnel").first).to_contain_text("Purchased")
    results = page.get_by_role("table").filter(has_text="Chance to win")
    for header in ("Uplift", "P-value", "Chance to win"):
        expect(results).to_contain_text(header, ignore_case=True)
    expect(results.get_by_role("row").filter(has_text="Purchased")).to_contain_text("%")
    expect(page.get_by_role("alert")).to_have_count(0)  # a fair split raises no warning
    expect(page.get_by_text("Sample ratio check: expected 50/50")).to_be_visible()


@pytest.mark.parametrize("dashboard", [(360, 240)], indirect=True)
def test_a_broken_split_is_shouted_about(page: Page, dashboard: str) -> None:
    sign_in(page, dashboard)
    page.goto(f"{dashboard}/experiments/{KEY}")
    warning = page.get_by_role("alert")
    expect(warning).to_contain_text("Sample ratio mismatch: do not trust these results")
    expect(warning).to_contain_text("60/40")


@pytest.mark.parametrize("dashboard", [(10, 10)], indirect=True)
def test_without_the_growth_role_the_report_stays_closed(page: Page, dashboard: str) -> None:
    sign_in(page, dashboard, user_id=1)
    expect(page.get_by_text("Ask an admin for the growth role")).to_be_visible()
    page.goto(f"{dashboard}/experiments/{KEY}")
    expect(page.locator("figure.funnel")).to_have_count(0)
