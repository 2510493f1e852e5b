from __future__ import annotations

from typing import Any

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint

from services.checkout.api.context import checkout
from services.checkout.api.schemas import StripeEventReceivedSchema
from services.checkout.usecases import webhooks
from services.common.web import ProblemSchema, request_uow

blp = Blueprint("stripe", __name__, description="Stripe webhook receiver")

WEBHOOK_PATH = "/stripe/webhooks"


@blp.route(WEBHOOK_PATH)
class StripeWebhooks(MethodView):
    @blp.response(200, StripeEventReceivedSchema)
    @blp.alt_response(400, schema=ProblemSchema, description="Bad signature")
    @blp.doc(parameters=[{"in": "header", "name": "Stripe-Signature", "required": True,
                          "schema": {"type": "string"},
                          "description": "Stripe's signature of the raw body"}],
             requestBody={"required": True, "description": "A Stripe event, as Stripe sent it",
                          "content": {"application/json": {"schema": {"type": "object"}}}})
    def post(self) -> dict[str, Any]:
        """Receive a Stripe event (signature checked on the raw body, 300 s tolerance)."""
        outcome = webhooks.receive(checkout(), request_uow(), request.get_data(cache=False),
                                   request.headers.get("Stripe-Signature"))
        return {"received": True, "outcome": outcome}
