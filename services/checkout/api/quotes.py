from __future__ import annotations

from typing import Any

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint

from services.checkout.api.context import checkout
from services.checkout.api.schemas import QuoteSchema, SelectionSchema
from services.checkout.domain.pricing import AddOnSelection, Selection
from services.checkout.usecases import quotes
from services.checkout.usecases.discounts import CodeOutcome
from services.checkout.usecases.views import quote_view
from services.common.web import ProblemSchema, current_principal, request_uow

blp = Blueprint("quotes", __name__, description="Prices for a namespace's selection")


def count_code_attempt(user_id: int) -> None:
    """Per client address and per account: guessing codes gets a 429."""
    checkout().code_attempts.hit(client=request.remote_addr or "unknown", account=str(user_id))


def selection_from(body: dict[str, Any]) -> Selection:
    return Selection(plan=body["plan"], seats=body["seats"],
                     addons=tuple(AddOnSelection(a["sku"], a["seats"]) for a in body["addons"]))


@blp.route("/quotes")
class Quotes(MethodView):
    @blp.arguments(SelectionSchema)
    @blp.response(200, QuoteSchema)
    @blp.alt_response(422, schema=ProblemSchema, description="Seats or add-ons break a rule")
    @blp.doc(security=[{"bearerAuth": []}])
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Price a plan, seats, add-ons and an optional discount code for a namespace.

        A rejected code does not fail the quote: the list price is returned with
        `code_result` saying why the code does not apply.
        """
        principal = current_principal()
        if body["discount_code"]:
            count_code_attempt(principal.user_id)
        quote, outcome, prompt = quotes.create_quote(checkout(), request_uow(), principal,
                                                     body["namespace_id"], selection_from(body),
                                                     body["discount_code"])
        view = {**quote_view(quote), "smb_prompt": prompt}
        if outcome is not None:
            view["code_result"] = code_result(outcome)
        return view


def code_result(outcome: CodeOutcome | None) -> dict[str, Any] | None:
    """A code's outcome as a quote shows it (None: no code was entered)."""
    if outcome is None:
        return None
    return {"code": outcome.code, "applied": outcome.applied is not None,
            "reason": outcome.rejection.code if outcome.rejection else None,
            "message": outcome.rejection.detail if outcome.rejection else None}
