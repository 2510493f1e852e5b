"""Duo seat assignment (Owners) and per-user entitlements (what the platform asks)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from services.checkout.api.context import checkout
from services.checkout.api.schemas import (
    DuoAssignedSchema,
    DuoAssignInSchema,
    DuoMembersQuerySchema,
    DuoMembersSchema,
    UserEntitlementsSchema,
)
from services.checkout.usecases import duo
from services.common.web import ProblemSchema, current_principal, request_uow

blp = Blueprint("duo", __name__, description="Duo seats: who holds one, assignment, entitlements")
BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]
SEATS = "/namespaces/<id:namespace_id>/duo/<string(maxlength=32):sku>"


@blp.route(f"{SEATS}/members")
class DuoMembers(MethodView):
    @blp.arguments(DuoMembersQuerySchema, location="query")
    @blp.response(200, DuoMembersSchema)
    @blp.alt_response(404, schema=ProblemSchema, description="Unknown namespace or add-on")
    @blp.doc(security=BEARER)
    def get(self, query: dict[str, Any], namespace_id: int, sku: str) -> dict[str, Any]:
        """The members, each with whether they hold a seat; sort by name, role or assigned,
        filter by role, assigned and a search in name and email."""
        return duo.members(checkout(), request_uow(), current_principal(), namespace_id, sku,
                           sort=query["sort"], descending=query["order"] == "desc", role=query.get("role"),
                           assigned=query.get("assigned"), search=query.get("search"))


@blp.route(f"{SEATS}/assign")
class Assign(MethodView):
    @blp.arguments(DuoAssignInSchema)
    @blp.response(200, DuoAssignedSchema)
    @blp.alt_response(409, schema=ProblemSchema, description="duo_seats_exhausted: nobody was assigned")
    @blp.alt_response(422, schema=ProblemSchema, description="not_a_member, too_many_users")
    @blp.doc(security=BEARER)
    def post(self, body: dict[str, Any], namespace_id: int, sku: str) -> dict[str, Any]:
        """Give each user a seat (Owners; up to 100 at once, all or nothing)."""
        return duo.assign(checkout(), request_uow(), current_principal(), namespace_id, sku, body["user_ids"])


@blp.route(f"{SEATS}/unassign")
class Unassign(MethodView):
    @blp.arguments(DuoAssignInSchema)
    @blp.response(200, DuoAssignedSchema)
    @blp.doc(security=BEARER)
    def post(self, body: dict[str, Any], namespace_id: int, sku: str) -> dict[str, Any]:
        """Take the users' seats back (Owners; up to 100 at once)."""
        return duo.unassign(checkout(), request_uow(), current_principal(), namespace_id, sku,
                            body["user_ids"])


@blp.route("/namespaces/<id:namespace_id>/users/<id:user_id>/entitlements")
class UserEntitlements(MethodView):
    @blp.response(200, UserEntitlementsSchema)
    @blp.alt_response(403, schema=ProblemSchema, description="Another user's, without a service token")
    @blp.doc(security=BEARER)
    def get(self, namespace_id: int, user_id: int) -> dict[str, Any]:
        """Whether the user has Duo in the namespace (the platform, with a service token; or the user)."""
        return duo.entitlements(checkout(), request_uow(), current_principal(), namespace_id, user_id)
