"""Signing in to the pages through the identity provider, the session cookie and
CSRF, in a real browser."""

from __future__ import annotations

import requests
from playwright.sync_api import Page, expect

from tests.browser.helpers import Site, log_in_at_provider
from tests.support import auth

QUOTE = {"namespace_id": 100, "plan": "premium", "seats": 2}
POST_QUOTE = """async ([body, csrf]) => {
  const headers = {"Content-Type": "application/json"};
  if (csrf) headers["X-CSRF-Token"] = csrf;
  const response = await fetch("/quotes", {method: "POST", headers, body: JSON.stringify(body)});
  return [response.status, (await response.json()).code || null];
}"""


def test_pages_need_a_session(page: Page, checkout_site: Site) -> None:
    response = page.goto(f"{checkout_site.url}/checkout?namespace_id=100")
    assert response is not None and response.status == 401
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in needed")

    # The old development link signs nobody in: it only starts the provider's sign-in.
    page.goto(f"{checkout_site.url}/sign-in?token=not-a-token&next=/checkout")
    expect(page.get_by_role("heading", name="Authorize Client")).to_be_visible()


def test_signing_in_through_the_provider_from_the_sign_in_page(page: Page, checkout_site: Site) -> None:
    page.goto(f"{checkout_site.url}/checkout?namespace_id=100")
    page.get_by_role("link", name="Sign in").click()
    log_in_at_provider(page, 1)
    assert page.url == f"{checkout_site.url}/checkout?namespace_id=100"
    expect(page.get_by_text("Signed in as user1@test")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in needed")


def test_sign_in_sets_an_httponly_lax_cookie_and_only_redirects_locally(page: Page, checkout_site: Site) -> None:
    checkout_site.sign_in(page, next_path="https://evil.example/steal")
    assert page.url == f"{checkout_site.url}/checkout"
    expect(page.get_by_text("Signed in as user1@test")).to_be_visible()
    [cookie] = [c for c in page.context.cookies() if c["name"] == "fd_session"]
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["secure"]) == (
        True, "Lax", False)  # Secure in production only
    assert cookie["expires"] > 0  # a short idle lifetime, renewed by each request


def test_a_cookie_authenticated_post_needs_the_csrf_token(page: Page, checkout_site: Site) -> None:
    checkout_site.sign_in(page, next_path="/checkout?namespace_id=100")
    csrf = page.locator('meta[name="csrf-token"]').get_attribute("content")
    assert page.evaluate(POST_QUOTE, [QUOTE, None]) == [403, "csrf_failed"]
    assert page.evaluate(POST_QUOTE, [QUOTE, "0" * 64]) == [403, "csrf_failed"]
    assert page.evaluate(POST_QUOTE, [QUOTE, csrf]) == [200, None]
    # Bearer-token API calls are unaffected.
    assert requests.post(f"{checkout_site.url}/quotes", json=QUOTE, headers=auth(1), timeout=10).status_code == 200
