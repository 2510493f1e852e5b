"""Seats as the platform sees them: utilization, who holds a seat, usage over
the term, the preview before adding members, and the seat settings."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from services.checkout.api.context import checkout
from services.checkout.api.schemas import (
    ExclusionInSchema,
    SeatHolderSchema,
    SeatHoldingSchema,
    SeatPreviewInSchema,
    SeatPreviewSchema,
    SeatReconciliationSchema,
    SeatSettingChangeSchema,
    SeatSettingsInSchema,
    SeatSettingsSchema,
    SeatUsageSchema,
    SeatUtilizationSchema,
)
from services.checkout.usecases import reconciliation, seats
from services.common.web import ProblemSchema, current_principal, request_uow

blp = Blueprint("seats", __name__, description="Seats: utilization, usage, overages and settings")
BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]


@blp.route("/namespaces/<id:namespace_id>/seats")
class Utilization(MethodView):
    @blp.response(200, SeatUtilizationSchema)
    @blp.doc(security=BEARER)
    def get(self, namespace_id: int) -> dict[str, Any]:
        """Seats bought, in use, max used this term and owed; Duo seats assigned of purchased."""
        return seats.utilization(checkout(), request_uow(), current_principal(), namespace_id)


@blp.route("/namespaces/<id:namespace_id>/seats/members")
class SeatHolders(MethodView):
    @blp.response(200, SeatHolderSchema(many=True))
    @blp.doc(security=BEARER)
    def get(self, namespace_id: int) -> list[dict[str, Any]]:
        """The billable members, each with the date they took a seat (oldest first)."""
        return seats.billable_members(request_uow(), current_principal(), namespace_id)


@blp.route("/namespaces/<id:namespace_id>/seats/history")
class SeatHistory(MethodView):
    @blp.response(200, SeatHoldingSchema(many=True))
    @blp.doc(security=BEARER)
    def get(self, namespace_id: int) -> list[dict[str, Any]]:
        """Who took a billable seat, when, and when they left."""
        return seats.seat_history(request_uow(), current_principal(), namespace_id)


@blp.route("/namespaces/<id:namespace_id>/seats/usage")
class SeatUsage(MethodView):
    @blp.response(200, SeatUsageSchema)
    @blp.doc(security=BEARER)
    def get(self, namespace_id: int) -> dict[str, Any]:
        """Seats in use over the current term, one point per change (the portal's plot)."""
        return seats.usage_series(request_uow(), current_principal(), namespace_id)


@blp.route("/namespaces/<id:namespace_id>/seats/preview")
class SeatPreview(MethodView):
    @blp.arguments(SeatPreviewInSchema)
    @blp.response(200, SeatPreviewSchema)
    @blp.doc(security=BEARER)
    def post(self, body: dict[str, Any], namespace_id: int) -> dict[str, Any]:
        """What happens if these users are added with this role: whether seats owed
        rise (`will_increase_overage`), by how many, and what the next quarterly
        reconciliation would charge. Nothing is written."""
        return seats.preview_add(checkout(), request_uow(), current_principal(), namespace_id,
                                 body["user_ids"], body["role"])


@blp.route("/namespaces/<id:namespace_id>/seats/settings")
class SeatSettings(MethodView):
    @blp.arguments(SeatSettingsInSchema)
    @blp.response(200, SeatSettingsSchema)
    @blp.alt_response(403, schema=ProblemSchema, description="Owners only")
    @blp.doc(security=BEARER)
    def put(self, body: dict[str, Any], namespace_id: int) -> dict[str, Any]:
        """Block seat overages (Owners): while on, a member add through the directory
        feed that needs a seat beyond those paid is refused. Turning it on removes nobody."""
        return seats.set_block_overages(request_uow(), current_principal(), namespace_id,
                                        body["block_overages"])


@blp.route("/namespaces/<id:namespace_id>/seats/settings/changes")
class SeatSettingChanges(MethodView):
    @blp.response(200, SeatSettingChangeSchema(many=True))
    @blp.doc(security=BEARER)
    def get(self, namespace_id: int) -> list[dict[str, Any]]:
        """The audit of the seat settings: who changed what, when and why."""
        return seats.setting_changes(request_uow(), current_principal(), namespace_id)


@blp.route("/namespaces/<id:namespace_id>/seats/reconciliations")
class Reconciliations(MethodView):
    @blp.response(200, SeatReconciliationSchema(many=True))
    @blp.doc(security=BEARER)
    def get(self, namespace_id: int) -> list[dict[str, Any]]:
        """Each quarter reconciled: the max used, the seats added and what was charged."""
        return reconciliation.history(request_uow(), current_principal(), namespace_id)


@blp.route("/admin/namespaces/<id:namespace_id>/reconciliation")
class Exclusion(MethodView):
    @blp.arguments(ExclusionInSchema)
    @blp.response(200, SeatSettingsSchema)
    @blp.alt_response(403, schema=ProblemSchema, description="Admins only")
    @blp.doc(security=BEARER)
    def put(self, body: dict[str, Any], namespace_id: int) -> dict[str, Any]:
        """Exclude a namespace from quarterly reconciliation, or include it again
        (admins, with a reason that is audited). Excluded namespaces true up at renewal."""
        return seats.set_excluded(request_uow(), current_principal(), namespace_id, body["excluded"],
                                  body["reason"])
