"""The seat pages in Chromium: an Owner assigns 100 Duo seats in one go, an
assignment past the seats is refused whole with the reason, and the warning
before adding members past the seats."""

from __future__ import annotations

from datetime import date

from playwright.sync_api import Page, expect

from tests.browser.helpers import Site
from tests.integration.test_directory_api import sent
from tests.integration.test_duo_seats_api import buy_duo
from tests.integration.test_seats_api import GLOBEX, joins, starts_term

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


def test_the_warning_before_adding_members_past_the_seats(page: Page, checkout_site: Site) -> None:
    starts_term(checkout_site.app, date(2026, 10, 1))  # quarter 1: three quarters left to pay
    checkout_site.sign_in(page, next_path=f"/checkout/namespaces/{GLOBEX}/seats")
    expect(page.locator("#seat-numbers")).to_contain_text("Seats in use4")
    page.get_by_label("User ids").fill("30")
    page.get_by_role("button", name="Check").click()
    expect(page.locator("#seat-warning")).to_have_text("No extra charge: 1 of your paid seats would be used.")
    page.get_by_label("User ids").fill("30, 31, 32")
    page.get_by_role("button", name="Check").click()
    expect(page.locator("#seat-warning")).to_have_text(
        "Adding them uses 2 more seats than you bought: $522.00 will be charged after the reconciliation "
        "on January 1, 2027.")
    page.get_by_label("Role").select_option("guest")
    page.get_by_label("User ids").fill("30, 31, 32")
    page.get_by_role("button", name="Check").click()
    expect(page.locator("#seat-warning")).to_contain_text("2 more seats")  # Guests take seats on Premium
