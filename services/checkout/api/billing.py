from __future__ import annotations

from typing import Any

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint

from services.checkout.adapters.models import BillingAccount, PaymentMethod
from services.checkout.api.context import checkout
from services.checkout.api.schemas import (
    BillingAccountInSchema,
    BillingAccountSchema,
    CardSchema,
    CardSetupSchema,
    RecordCardSchema,
)
from services.checkout.usecases import billing
from services.checkout.usecases.views import card_view
from services.common.web import ProblemSchema, current_principal, request_uow

blp = Blueprint("billing", __name__, description="The caller's billing account and cards")


def count_card_attempt(user_id: int) -> None:
    """Per client address and per account: testing stolen cards gets a 429."""
    checkout().card_attempts.hit(client=request.remote_addr or "unknown", account=str(user_id))


def account_view(account: BillingAccount, cards: list[PaymentMethod]) -> dict[str, Any]:
    return {**{f: getattr(account, f) for f in billing.ACCOUNT_FIELDS}, "id": account.id,
            "has_stripe_customer": account.stripe_customer_id is not None,
            "cards": [card_view(c) for c in cards]}


@blp.route("/billing-account")
class Account(MethodView):
    @blp.response(200, BillingAccountSchema)
    @blp.doc(security=[{"bearerAuth": []}])
    def get(self) -> dict[str, Any]:
        """The caller's billing account with its saved cards."""
        account, cards = billing.get_account(request_uow(), current_principal())
        return account_view(account, cards)

    @blp.arguments(BillingAccountInSchema)
    @blp.response(200, BillingAccountSchema)
    @blp.doc(security=[{"bearerAuth": []}])
    def put(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create or replace the caller's billing account (company and address).

        The address is passed to Stripe with the card for its checks.
        """
        principal = current_principal()
        billing.save_account(request_uow(), principal, body)
        account, cards = billing.get_account(request_uow(), principal)
        return account_view(account, cards)


@blp.route("/billing-account/card-setup")
class CardSetup(MethodView):
    @blp.response(201, CardSetupSchema)
    @blp.alt_response(429, schema=ProblemSchema, description="Too many card attempts")
    @blp.alt_response(503, schema=ProblemSchema, description="Stripe unreachable")
    @blp.doc(security=[{"bearerAuth": []}])
    def post(self) -> dict[str, Any]:
        """Start capturing a card: returns a SetupIntent client secret for Stripe.js.

        Rate limited per account and per client address, with adding a card."""
        principal = current_principal()
        count_card_attempt(principal.user_id)
        setup = billing.start_card_setup(checkout(), request_uow, principal)
        return setup.__dict__


@blp.route("/billing-account/cards")
class Cards(MethodView):
    @blp.arguments(RecordCardSchema)
    @blp.response(201, CardSchema)
    @blp.alt_response(402, schema=ProblemSchema, description="Card declined")
    @blp.alt_response(429, schema=ProblemSchema, description="Too many card attempts")
    @blp.doc(security=[{"bearerAuth": []}])
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Save the card of a SetupIntent that Stripe.js confirmed.

        It becomes the default with `make_default: true`, or when there is no valid default card."""
        principal = current_principal()
        count_card_attempt(principal.user_id)
        card = billing.record_card(checkout(), request_uow, principal, body["setup_intent_id"],
                                   body["make_default"])
        return card_view(card)
