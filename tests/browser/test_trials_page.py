"""An Owner starts a trial on the trials page in a real browser."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import Site


@pytest.mark.flags({"duo-pro-upsell": 1})
def test_an_owner_starts_an_ultimate_trial_on_a_premium_namespace(page: Page, trials_site: Site) -> None:
    trials_site.sign_in(page, next_path="/trials")
    expect(page.get_by_role("heading", level=1)).to_have_text("Trials")
    subgroup = page.get_by_role("region", name="acme/backend")
    expect(subgroup.locator(".trial[data-kind=ultimate]")).to_contain_text(
        "Trials are for top-level groups; start it on the parent group.")

    globex = page.get_by_role("region", name="globex")
    ultimate = globex.locator(".trial[data-kind=ultimate]")
    expect(ultimate).to_contain_text("Free for 60 days.")
    ultimate.get_by_role("button", name="Start the Ultimate trial").click()
    expect(ultimate).to_contain_text("Active: 60 days left, ends January 20, 2027.")
    checkout = trials_site.app.extensions["trials"].ctx.settings.checkout_pages_url
    expect(ultimate.get_by_role("link", name="Buy Ultimate")).to_have_attribute(  # the upgrade, as before
        "href", f"{checkout}/checkout?namespace_id=200&plan=ultimate")
    upsell = globex.locator(".upsell")
    expect(upsell).to_contain_text("Try GitLab Duo Pro free for 60 days alongside your Ultimate trial.")

    upsell.get_by_role("button", name="Start the GitLab Duo Pro trial").click()
    expect(globex.locator(".trial[data-kind=duo_pro]")).to_contain_text("Active: 60 days left")
    expect(upsell).to_be_hidden()

    page.reload()  # what the server renders now
    expect(page.get_by_role("region", name="globex").locator(".trial[data-kind=ultimate]")).to_contain_text(
        "Active: 60 days left, ends January 20, 2027.")


def test_a_maintainer_has_no_trials_to_start(page: Page, trials_site: Site) -> None:
    trials_site.sign_in(page, user_id=2, next_path="/trials")
    expect(page.get_by_text("You are not an Owner of any group")).to_be_visible()
