"""The browser's part of the card flow, done the way Stripe.js does it."""

from __future__ import annotations

from typing import Any

from devtools.devcard import confirm_card_setup
from tests.support import auth

ACCOUNT = {"company": "Acme Corp", "email": "billing@acme.test", "country": "US",
           "address_line1": "1 Main St", "city": "Springfield", "state": "IL", "postal_code": "62701"}


class Buyer:
    """A prospect driving checkout's API (Flask test client or HTTP session)."""

    def __init__(self, client: Any, stripe_url: str, user_id: int = 1) -> None:
        self.client = client
        self.stripe_url = stripe_url
        self.user_id = user_id
        self.headers = auth(user_id)

    def post(self, path: str, json: Any = None, headers: dict[str, str] | None = None) -> Any:
        return self.client.post(path, json=json, headers={**self.headers, **(headers or {})})

    def get(self, path: str) -> Any:
        return self.client.get(path, headers=self.headers)

    def save_account(self) -> None:
        response = self.client.put("/billing-account", json=ACCOUNT, headers=self.headers)
        assert response.status_code == 200

    def add_card(self, number: str, complete_3ds: bool = True) -> tuple[dict[str, Any], Any]:
        """Browser confirms the SetupIntent; then the server records the card as the
        default, as the checkout page does (the card typed at checkout pays)."""
        setup = self.post("/billing-account/card-setup")
        assert setup.status_code == 201, _json(setup)
        body = _json(setup)
        browser = confirm_card_setup(self.stripe_url, body["client_secret"], number,
                                     complete_3ds=complete_3ds)
        recorded = self.post("/billing-account/cards", {"setup_intent_id": body["setup_intent_id"],
                                                        "make_default": True})
        return browser, recorded

    def buy(self, key: str, namespace_id: int = 100, plan: str = "premium", seats: int = 5,
            **extra: Any) -> Any:
        return self.post("/purchases", {"namespace_id": namespace_id, "plan": plan, "seats": seats,
                                        **extra}, headers={"Idempotency-Key": key})


def _json(response: Any) -> Any:
    return response.json() if callable(response.json) else response.json




def provision_buyers(app: Any, stripe_url: str, count: int, first_id: int = 1000,
                     card: str = "4242424242424242") -> list[int]:
    """Owners of fresh Free namespaces, each with a billing account and a card at
    (local)Stripe: the state a prospect reaches before pressing Buy. User id and
    namespace id are the same number."""
    import stripe
    from sqlalchemy.orm import Session

    from services.checkout.adapters.models import (
        BillingAccount,
        Membership,
        Namespace,
        PaymentMethod,
        User,
    )

    client = stripe.StripeClient("sk_test_setup", base_addresses={"api": stripe_url})
    now = app.extensions["checkout"].ctx.clock.now()
    ids = list(range(first_id, first_id + count))
    with Session(app.extensions["checkout"].ctx.engine) as s:
        for i in ids:
            customer = client.v1.customers.create(params={"email": f"owner{i}@test"})
            pm = client.v1.payment_methods.create(params={"type": "card", "card": {
                "number": card, "exp_month": 12, "exp_year": 2034, "cvc": "123"}})
            client.v1.payment_methods.attach(pm.id, params={"customer": customer.id})
            s.add(User(id=i, email=f"owner{i}@test", name=f"Owner {i}"))
            s.add(Namespace(id=i, path=f"group-{i}", name=f"Group {i}", kind="group", plan="free",
                            created_at=now))
            s.flush()
            s.add(Membership(namespace_id=i, user_id=i, role="owner", billable=True))
            account = BillingAccount(user_id=i, company=f"Co {i}", email=f"owner{i}@test",
                                     country="US", address_line1="1 St", city="X", postal_code="1",
                                     stripe_customer_id=customer.id, created_at=now, updated_at=now)
            s.add(account)
            s.flush()
            s.add(PaymentMethod(billing_account_id=account.id, stripe_payment_method_id=pm.id,
                                brand="visa", last4=card[-4:], exp_month=12, exp_year=2034,
                                is_default=True, created_at=now))
        s.commit()
    return ids
