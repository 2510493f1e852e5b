"""What Stripe.js does in the browser, for curl users and tests: confirm a
SetupIntent with a test card number (and complete 3-D Secure) against
localstripe. Never used by the services themselves: card numbers only ever
travel from the browser (or this tool) to Stripe.

    python -m devtools.devcard <setup_intent_client_secret> [card] [--fail-3ds]
    python -m devtools.devcard --pay <payment_intent_client_secret> [--fail-3ds]
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import requests

from services.common.config import local_url

TEST_CARDS = {
    "4242424242424242": "succeeds",
    "4000000000000002": "declined",
    "4000000000009995": "declined (insufficient funds)",
    "4000002500003155": "needs 3-D Secure",
    "4000000000000341": "attaches, then every charge fails",
}


def _post(stripe_base: str, path: str, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = requests.post(f"{stripe_base}{path}", json=data, timeout=10)
    return response.status_code, response.json()


def confirm_card_setup(stripe_base: str, client_secret: str, number: str,
                       *, complete_3ds: bool = True, publishable_key: str = "pk_test_localstripe",
                       exp_month: int = 12, exp_year: int = 2034, postal_code: str = "94105"
                       ) -> dict[str, Any]:
    """confirmCardSetup: returns {'setupIntent': ...} or {'error': {...}} like Stripe.js."""
    seti = client_secret.split("_secret_")[0]
    status, body = _post(stripe_base, f"/v1/setup_intents/{seti}/confirm", {
        "key": publishable_key, "use_stripe_sdk": True, "client_secret": client_secret,
        "payment_method_data": {
            "type": "card",
            "card": {"number": number, "exp_month": exp_month, "exp_year": exp_year, "cvc": "123"},
            "billing_details": {"address": {"postal_code": postal_code}},
        }})
    if status != 200 or "error" in body:
        return {"error": body.get("error", body)}
    if body["status"] == "requires_action":
        action = "confirm" if complete_3ds else "cancel"
        status, body = _post(stripe_base, f"/v1/setup_intents/{seti}/{action}", {
            "key": publishable_key, "use_stripe_sdk": True, "client_secret": client_secret})
        if status != 200 or body.get("status") != "succeeded":
            return {"error": {"message": "The latest attempt to set up the payment method has "
                                         "failed because authentication failed."}}
    return {"setupIntent": body}


def confirm_card_payment(stripe_base: str, client_secret: str, *, complete_3ds: bool = True,
                         publishable_key: str = "pk_test_localstripe") -> dict[str, Any]:
    """confirmCardPayment for an intent that requires 3-D Secure."""
    pi = client_secret.split("_secret_")[0]
    status, body = _post(stripe_base,
                         f"/v1/payment_intents/{pi}/_authenticate?success={str(complete_3ds).lower()}",
                         {"key": publishable_key, "client_secret": client_secret})
    if status != 200 or "error" in body:
        return {"error": body.get("error", body)}
    return {"paymentIntent": body}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("client_secret")
    parser.add_argument("card", nargs="?", default="4242424242424242",
                        help="; ".join(f"{k}: {v}" for k, v in TEST_CARDS.items()))
    parser.add_argument("--pay", action="store_true", help="authenticate a PaymentIntent instead")
    parser.add_argument("--fail-3ds", action="store_true", help="press 'Fail authentication'")
    parser.add_argument("--stripe", default=os.environ.get("STRIPE_API_BASE") or local_url("localstripe"),
                        help="localstripe (default STRIPE_API_BASE, else make run's)")
    args = parser.parse_args(argv)
    if args.pay:
        result = confirm_card_payment(args.stripe, args.client_secret, complete_3ds=not args.fail_3ds)
    else:
        result = confirm_card_setup(args.stripe, args.client_secret, args.card,
                                    complete_3ds=not args.fail_3ds)
    if "error" in result:
        print(f"error: {result['error'].get('message', result['error'])}")
        return 1
    intent = result.get("setupIntent") or result.get("paymentIntent") or {}
    print(f"{intent.get('id')}: {intent.get('status')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
