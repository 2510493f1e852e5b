"""What Stripe.js does in a buyer's browser, for demo people and population
scripts: confirm a SetupIntent with a test card at (local)Stripe, 3-D Secure
completed. Card numbers go from here to Stripe only, never to our services."""

from __future__ import annotations

from typing import Any

import requests


def confirm_card_setup(http: requests.Session, stripe_url: str, client_secret: str, number: str,
                       publishable_key: str = "pk_test_localstripe") -> bool:
    """confirmCardSetup: whether the card was set up (False: declined)."""
    seti = client_secret.split("_secret_")[0]
    browser: dict[str, Any] = {"key": publishable_key, "use_stripe_sdk": True, "client_secret": client_secret}
    confirmed = http.post(f"{stripe_url}/v1/setup_intents/{seti}/confirm", timeout=30, json={
        **browser, "payment_method_data": {
            "type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"},
            "billing_details": {"address": {"postal_code": "94105"}}}})
    if confirmed.status_code != 200:
        return False
    if confirmed.json().get("status") == "requires_action":  # the bank's page, passed
        confirmed = http.post(f"{stripe_url}/v1/setup_intents/{seti}/confirm", json=browser, timeout=30)
    return confirmed.status_code == 200 and confirmed.json().get("status") == "succeeded"
