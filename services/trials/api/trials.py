from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from identity.sessions import caller_token
from services.common.web import ProblemSchema, current_principal, request_uow
from services.trials.api.schemas import (
    StartTrialSchema,
    SupportActionSchema,
    TrialSchema,
    VerdictSchema,
)
from services.trials.runtime import current
from services.trials.usecases import trials

blp = Blueprint("trials", __name__, description="Trials of Ultimate and the Duo add-ons")
AUTH: list[dict[str, list[str]]] = [{"bearerAuth": []}]


def bearer() -> str:
    """The caller's own token (bearer or page session), forwarded to checkout so it
    decides what they may see."""
    current_principal()
    return caller_token()


@blp.route("/namespaces/<id:namespace_id>/trials/eligibility")
class Eligibility(MethodView):
    @blp.response(200, VerdictSchema(many=True))
    @blp.doc(security=AUTH)
    def get(self, namespace_id: int) -> list[dict[str, Any]]:
        """Which trials this namespace can start now, and the reason where not."""
        verdicts = trials.eligibility(current(), request_uow(), current_principal(), namespace_id)
        return [{**v.__dict__, "name": current().rules.kinds[v.kind].name} for v in verdicts]


@blp.route("/namespaces/<id:namespace_id>/trials")
class NamespaceTrials(MethodView):
    @blp.response(200, TrialSchema(many=True))
    @blp.doc(security=AUTH)
    def get(self, namespace_id: int) -> list[dict[str, Any]]:
        """The namespace's trials with their days left and end dates (members)."""
        return trials.list_for(current(), request_uow(), current_principal(), namespace_id)

    @blp.arguments(StartTrialSchema)
    @blp.response(201, TrialSchema, description="Started")
    @blp.alt_response(200, schema=TrialSchema, description="Already running: the same trial")
    @blp.alt_response(409, schema=ProblemSchema, description="Trial active or already used")
    @blp.alt_response(422, schema=ProblemSchema, description="Not eligible (reason in code)")
    @blp.doc(security=AUTH)
    def post(self, body: dict[str, Any], namespace_id: int) -> tuple[dict[str, Any], int]:
        """Start a trial (Owners of top-level groups). Idempotent per namespace and kind."""
        created, trial = trials.start(current(), request_uow(), current_principal(), bearer(), namespace_id,
                                      body["kind"])
        return trial, 201 if created else 200


@blp.route("/trials/<id:trial_id>/extend")
class Extend(MethodView):
    @blp.arguments(SupportActionSchema)
    @blp.response(200, TrialSchema)
    @blp.alt_response(409, schema=ProblemSchema, description="Not active, or extended already")
    @blp.doc(security=AUTH)
    def post(self, body: dict[str, Any], trial_id: int) -> dict[str, Any]:
        """Support: extend an active trial once (audited)."""
        return trials.extend(current(), request_uow(), current_principal(), trial_id, body["reason"])


@blp.route("/trials/<id:trial_id>/reactivate")
class Reactivate(MethodView):
    @blp.arguments(SupportActionSchema)
    @blp.response(200, TrialSchema)
    @blp.alt_response(409, schema=ProblemSchema, description="Not expired, or not allowed again")
    @blp.doc(security=AUTH)
    def post(self, body: dict[str, Any], trial_id: int) -> dict[str, Any]:
        """Support: reactivate an expired trial once, on a namespace back on Free (audited)."""
        return trials.reactivate(current(), request_uow(), current_principal(), bearer(), trial_id,
                                 body["reason"])
