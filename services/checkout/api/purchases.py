from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request
from flask.views import MethodView
from flask_smorest import Blueprint

from services.checkout.api.context import checkout
from services.checkout.api.quotes import count_code_attempt, selection_from
from services.checkout.api.schemas import OrderSchema, PurchaseRequestSchema, PurchaseResultSchema
from services.checkout.domain.orders import OrderStatus
from services.checkout.usecases import idempotency, purchases
from services.checkout.usecases.settlement import PurchaseResult, Settled
from services.common.problems import PROBLEM_JSON, as_problem, status_of
from services.common.web import ProblemSchema, current_principal, request_uow

blp = Blueprint("purchases", __name__, description="Buying a plan and following its order")

IDEMPOTENCY_KEY = {
    "in": "header", "name": "Idempotency-Key", "required": True,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]*[!-~][ -~]*$"},
    "description": "Same key, same body: the first response is replayed for 24 h."}


def _fields(result: PurchaseResult) -> tuple[dict[str, Any], int]:
    """What PurchaseResultSchema serialises, and the status: 201 once
    provisioned, 202 while the payment waits (3-D Secure, processing)."""
    fields: dict[str, Any] = {"status": result.status, "order": result.order}
    if result.status is OrderStatus.COMPLETED:
        return fields | {"subscription": result.subscription}, 201
    return fields | {"client_secret": result.client_secret, "next_step": result.next_step}, 202


def settled_response(settled: Settled) -> idempotency.Replay:
    """A purchase's answer as the Idempotency-Key replays it: serialised by the
    same schema, or problem+json when it ended without provisioning (without a
    request id, which would be the first request's)."""
    if isinstance(settled, PurchaseResult):
        fields, status = _fields(settled)
        return idempotency.Replay(status, PurchaseResultSchema().dump(fields))
    return idempotency.Replay(status_of(settled.error), as_problem(settled.error).to_dict())


def replayed(response: idempotency.Replay) -> Response:
    """A stored answer, sent as it was first."""
    sent = jsonify(response.body)
    sent.status_code = response.status_code
    if response.status_code >= 400:
        sent.mimetype = PROBLEM_JSON
    return sent


def answer(settled: Settled) -> Response | tuple[dict[str, Any], int]:
    if isinstance(settled, PurchaseResult):
        return _fields(settled)  # the view's response schema serialises it
    return replayed(settled_response(settled))


def buy(body: dict[str, Any], wanted: purchases.Buyable) -> Response | tuple[dict[str, Any], int]:
    """Any purchase (a plan, an expansion) as the API takes it: a code attempt counted,
    the Idempotency-Key checked, then bought once, or its first answer replayed."""
    principal = current_principal()
    if body["discount_code"]:
        count_code_attempt(principal.user_id)
    key = idempotency.validate_key(request.headers.get("Idempotency-Key"))
    fingerprint = idempotency.request_fingerprint(request.path, body)
    result = purchases.purchase(checkout(), request_uow, principal, wanted, key, fingerprint,
                                settled_response)
    if isinstance(result, idempotency.Replay):
        return replayed(result)
    return answer(result)


@blp.route("/purchases")
class Purchases(MethodView):
    @blp.arguments(PurchaseRequestSchema)
    @blp.response(201, PurchaseResultSchema, description="Paid and provisioned")
    @blp.alt_response(202, schema=PurchaseResultSchema,
                      description="The bank asks for 3-D Secure: confirm with the client secret")
    @blp.alt_response(402, schema=ProblemSchema, description="Card declined")
    @blp.alt_response(409, schema=ProblemSchema, description="Already subscribed or in progress")
    @blp.alt_response(503, schema=ProblemSchema, description="Stripe unreachable; retry")
    @blp.doc(security=[{"bearerAuth": []}], parameters=[IDEMPOTENCY_KEY])
    def post(self, body: dict[str, Any]) -> Response | tuple[dict[str, Any], int]:
        """Buy a plan for a namespace with the saved card (Owners only)."""
        return buy(body, purchases.PurchaseRequest(
            namespace_id=body["namespace_id"], selection=selection_from(body),
            discount_code=body["discount_code"], payment_method_id=body["payment_method_id"]))


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
    def post(self, order_id: int) -> Response | tuple[dict[str, Any], int]:
        """Finish an order once the browser completed 3-D Secure."""
        return answer(purchases.confirm(checkout(), request_uow, current_principal(), order_id))
