from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request
from flask.views import MethodView
from flask_smorest import Blueprint

from services.checkout.api.context import checkout
from services.checkout.api.quotes import count_code_attempt, selection_from
from services.checkout.api.schemas import OrderSchema, PurchaseRequestSchema, PurchaseResultSchema
from services.checkout.usecases import idempotency, purchases
from services.checkout.usecases.settlement import Outcome
from services.common.problems import PROBLEM_JSON
from services.common.web import ProblemSchema, current_principal, request_uow

blp = Blueprint("purchases", __name__, description="Buying a plan and following its order")


def outcome_response(outcome: Outcome) -> Response:
    response = jsonify(outcome.body)
    response.status_code = outcome.status_code
    if outcome.status_code >= 400:
        response.mimetype = PROBLEM_JSON
    return response


@blp.route("/purchases")
class Purchases(MethodView):
    @blp.arguments(PurchaseRequestSchema)
    @blp.response(201, PurchaseResultSchema, description="Paid and provisioned")
    @blp.alt_response(202, schema=PurchaseResultSchema,
                      description="The bank asks for 3-D Secure: confirm with the client secret")
    @blp.alt_response(402, schema=ProblemSchema, description="Card declined")
    @blp.alt_response(409, schema=ProblemSchema, description="Already subscribed or in progress")
    @blp.alt_response(503, schema=ProblemSchema, description="Stripe unreachable; retry")
    @blp.doc(security=[{"bearerAuth": []}], parameters=[{
        "in": "header", "name": "Idempotency-Key", "required": True,
        "schema": {"type": "string", "minLength": 1, "maxLength": 255,
                   "pattern": "^[ -~]*[!-~][ -~]*$"},
        "description": "Same key, same body: the first response is replayed for 24 h."}])
    def post(self, body: dict[str, Any]) -> Response:
        """Buy a plan for a namespace with the saved card (Owners only)."""
        principal = current_principal()
        if body["discount_code"]:
            count_code_attempt(principal.user_id)
        key = idempotency.validate_key(request.headers.get("Idempotency-Key"))
        fingerprint = idempotency.request_fingerprint(request.path, body)
        purchase_request = purchases.PurchaseRequest(
            namespace_id=body["namespace_id"], selection=selection_from(body),
            discount_code=body["discount_code"], payment_method_id=body["payment_method_id"])
        outcome = purchases.purchase(checkout(), request_uow, principal, purchase_request, key,
                                     fingerprint)
        return outcome_response(outcome)


@blp.route("/orders/<id:order_id>")
class OrderResource(MethodView):
    @blp.response(200, OrderSchema)
    @blp.doc(security=[{"bearerAuth": []}])
    def get(self, order_id: int) -> dict[str, Any]:
        """An order and its status (members of its namespace)."""
        return purchases.get_order(request_uow(), current_principal(), order_id)


@blp.route("/orders/<id:order_id>/confirm")
class OrderConfirm(MethodView):
    @blp.response(201, PurchaseResultSchema)
    @blp.alt_response(402, schema=ProblemSchema, description="Authentication failed or declined")
    @blp.alt_response(409, schema=ProblemSchema, description="Authentication not finished")
    @blp.doc(security=[{"bearerAuth": []}])
    def post(self, order_id: int) -> Response:
        """Finish an order once the browser completed 3-D Secure."""
        outcome = purchases.confirm(checkout(), request_uow, current_principal(), order_id)
        return outcome_response(outcome)
