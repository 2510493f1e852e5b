"""Browser tests: Debian's headless Chromium driven by Playwright against
checkout and trials served over HTTP, with a real localstripe serving the
Stripe.js stand-in. A failing test leaves a screenshot in
test-output/screenshots/<test>.png."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from oidc_provider_mock import User, run_server_in_thread
from playwright.sync_api import Browser, Page, sync_playwright
from werkzeug.serving import WSGIRequestHandler

from services.checkout.app import create_app
from services.common.clock import FixedClock
from services.common.config import ROOT
from tests.browser.helpers import Site
from tests.conftest import FLAGS_OFF, _seeded, join_trials, make_settings, trials_settings
from tests.support import WEBHOOK_SECRET, LiveServer, LocalStripe

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = ROOT / "test-output" / "screenshots"
PAYLOAD = ROOT / "experiments" / "payload.json"



def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "flags(features): force these features' experiment to a "
                                       "variation, e.g. flags({'smb-discount-prompt': 1})")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"rep_{report.when}", report)  # the page fixture screenshots failures
    return report


class QuietHandler(WSGIRequestHandler):
    """Request log lines without query strings: the sign-in callback's carries a code."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self.path = self.path.split("?", 1)[0]  # the request is answered: only the log line reads it
        super().log_request(code, size)


@pytest.fixture
def backend() -> str:
    return "sqlite"  # what the pages do does not depend on the database


# --- the browser ---------------------------------------------------------------------
@pytest.fixture(scope="session", autouse=True)
def chromium_installed() -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium; "
                    ".ci/run installs it)")


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def viewport() -> dict[str, int]:
    return {"width": 1280, "height": 900}


@pytest.fixture
def phone(viewport: dict[str, int]) -> None:
    """A phone-sized screen: 375 px wide."""
    viewport.update(width=375, height=740)


@pytest.fixture
def page(browser: Browser, viewport: dict[str, int], request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport=viewport)
    context.set_default_timeout(10_000)
    tab = context.new_page()
    yield tab
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=str(SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', request.node.name)}.png"),
                       full_page=True)
    context.close()


# --- the services ----------------------------------------------------------------------
PLATFORM_GROUPS = {8: ["platform/growth"]}  # Gina reads the growth dashboard


@pytest.fixture(scope="session")
def identity_provider() -> Iterator[str]:
    """A real OpenID Connect provider (oidc-provider-mock) that knows users 1 to 9
    (user<id>@test) and Erin (50, invited to manage billing); its login page has a
    button per user id."""
    users = [User(sub=str(i), claims={"email": f"user{i}@test", "email_verified": True,
                                      "groups": PLATFORM_GROUPS.get(i, [])}) for i in range(1, 10)]
    users.append(User(sub="50", claims={"email": "erin@partner.test", "email_verified": True, "groups": []}))
    with run_server_in_thread(user_claims=users) as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture
def payload_file(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every flag off, unless the test's `flags` marker forces some variations."""
    marker = request.node.get_closest_marker("flags")
    if marker is None:
        return FLAGS_OFF
    data = json.loads(PAYLOAD.read_text())
    for feature, forced in marker.args[0].items():
        rule = data["features"][feature]["rules"][0]
        rule["weights"] = [1.0 if i == forced else 0.0 for i in range(len(rule["variations"]))]
    path = tmp_path / "payload.json"
    path.write_text(json.dumps(data))
    return str(path)


@pytest.fixture
def checkout_site(checkout_db_url: str, clock: FixedClock, localstripe: LocalStripe,
                  payload_file: str, identity_provider: str) -> Iterator[Site]:
    """Checkout over HTTP with localstripe, its pages loading localstripe's Stripe.js."""
    settings = make_settings("checkout", checkout_db_url, localstripe.url, payload_file).with_overrides(
        stripe_js_url=f"{localstripe.url}/js.stripe.com/v3/", oidc_issuer=identity_provider)
    app = _seeded(create_app(settings, clock), clock)
    server = LiveServer(app, request_handler=QuietHandler)
    localstripe.register_webhook("checkout", f"{server.url}/stripe/webhooks", WEBHOOK_SECRET)
    yield Site(app, server.url)
    server.stop()
    app.extensions["checkout"].ctx.close()


@pytest.fixture
def trials_site(checkout_site: Site, trials_db_url: str, clock: FixedClock,
                payload_file: str, identity_provider: str) -> Iterator[Site]:
    """Trials over HTTP, its read model fed by the live checkout's relay."""
    from services.trials.app import create_app as create_trials_app

    settings = trials_settings(trials_db_url, checkout_site.url).with_overrides(
        growthbook_payload_file=payload_file, oidc_issuer=identity_provider)
    app = create_trials_app(settings, clock)
    server = LiveServer(app, request_handler=QuietHandler)
    join_trials(checkout_site.app, server.url)
    yield Site(app, server.url)
    server.stop()
    app.extensions["trials"].ctx.close()
