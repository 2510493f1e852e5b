from __future__ import annotations

from typing import Any

from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint

from services.checkout.api.context import checkout
from services.checkout.api.purchases import IDEMPOTENCY_KEY, buy
from services.checkout.api.quotes import code_result, count_code_attempt
from services.checkout.api.schemas import (
    ExpansionQuoteSchema,
    ExpansionRequestSchema,
    ExpansionSchema,
    PurchaseResultSchema,
)
from services.checkout.domain.expansions import Expansion, Kind
from services.checkout.usecases import expansions
from services.common.web import ProblemSchema, current_principal, request_uow

blp = Blueprint("expansions", __name__,
                description="Growing a namespace: seats, Duo add-ons, compute minutes and storage")


def _expansion(body: dict[str, Any]) -> Expansion:
    return Expansion(Kind(body["kind"]), body["quantity"], body["sku"])


@blp.route("/expansions/quote")
class ExpansionQuote(MethodView):
    @blp.arguments(ExpansionSchema)
    @blp.response(200, ExpansionQuoteSchema)
    @blp.alt_response(404, schema=ProblemSchema,
                      description="Unknown namespace, or no subscription to add to")
    @blp.alt_response(409, schema=ProblemSchema, description="The term has ended")
    @blp.alt_response(422, schema=ProblemSchema, description="The expansion breaks a rule")
    @blp.doc(security=[{"bearerAuth": []}])
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Price seats, an add-on or packs for a namespace, pro rata to its term (Owners).

        A rejected code does not fail the quote: `code_result` says why it does not apply."""
        principal = current_principal()
        if body["discount_code"]:
            count_code_attempt(principal.user_id)
        quote, outcome = expansions.quote_expansion(checkout(), request_uow(), principal,
                                                    body["namespace_id"], _expansion(body),
                                                    body["discount_code"])
        return {**expansions.quote_view(quote), "code_result": code_result(outcome)}


@blp.route("/expansions")
class Expansions(MethodView):
    @blp.arguments(ExpansionRequestSchema)
    @blp.response(201, PurchaseResultSchema, description="Paid and added")
    @blp.alt_response(202, schema=PurchaseResultSchema,
                      description="The bank asks for 3-D Secure: confirm with the client secret, "
                                  "then POST /orders/{id}/confirm")
    @blp.alt_response(402, schema=ProblemSchema, description="Card declined")
    @blp.alt_response(404, schema=ProblemSchema,
                      description="Unknown namespace, or no subscription to add to")
    @blp.alt_response(409, schema=ProblemSchema,
                      description="Another purchase in progress, or the term ended")
    @blp.alt_response(422, schema=ProblemSchema, description="The expansion breaks a rule")
    @blp.alt_response(503, schema=ProblemSchema, description="Stripe unreachable; retry")
    @blp.doc(security=[{"bearerAuth": []}], parameters=[IDEMPOTENCY_KEY])
    def post(self, body: dict[str, Any]) -> Response | tuple[dict[str, Any], int]:
        """Buy seats, an add-on or packs for a namespace with the saved card (Owners only)."""
        return buy(body, expansions.ExpansionRequest(body["namespace_id"], _expansion(body),
                                                     body["discount_code"], body["payment_method_id"]))
