"""The Duo seat page in Chromium: an Owner assigns 100 members in one go, and
an assignment past the seats is refused whole with the reason."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.helpers import Site
from tests.integration.test_directory_api import sent
from tests.integration.test_duo_seats_api import buy_duo
from tests.integration.test_seats_api import GLOBEX, joins

PAGE = f"/checkout/namespaces/{GLOBEX}/duo/duo_pro"


def test_an_owner_assigns_a_hundred_members_in_one_go(page: Page, checkout_site: Site) -> None:
    buy_duo(checkout_site.app, 100)
    sent(checkout_site.app.test_client(), *(joins(u) for u in range(1000, 1096)))  # 100 members
    checkout_site.sign_in(page, next_path=PAGE)
    expect(page.locator("#duo-summary")).to_have_text("0 of 100 seats assigned, 100 free.")
    page.get_by_label("Select everyone shown").check()
    page.get_by_role("button", name="Assign seats").click()
    expect(page.locator("#duo-summary")).to_have_text("100 of 100 seats assigned, 0 free.")
    expect(page.locator("td.assigned", has_text="assigned")).to_have_count(100)
    # Sorted and filtered: nobody is left unassigned.
    page.get_by_role("link", name="not assigned").click()
    expect(page.locator('input[name="user"]')).to_have_count(0)


def test_too_many_for_the_seats_is_refused_whole(page: Page, checkout_site: Site) -> None:
    buy_duo(checkout_site.app, 2)
    checkout_site.sign_in(page, next_path=PAGE)
    page.get_by_label("Select everyone shown").check()
    page.get_by_role("button", name="Assign seats").click()
    expect(page.locator("#duo-status")).to_have_text(
        "4 members need a seat and 2 of 2 are free; nobody was assigned.")
    expect(page.locator("#duo-summary")).to_have_text("0 of 2 seats assigned, 2 free.")
