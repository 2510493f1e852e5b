"""The platform's system hooks about groups and members: the only way into
checkout's copy of the directory (services only)."""

from __future__ import annotations

from typing import Any

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint

from messaging.inbox import services_only
from services.checkout.api.schemas import HookReceivedSchema, SystemHookSchema
from services.checkout.usecases import directory
from services.common.problems import Problem
from services.common.web import ProblemSchema, request_uow

blp = Blueprint("directory", __name__,
                description="The platform's directory: its system hooks about groups and members")
blp.before_request(services_only(
    "Only the platform may send directory hooks; the token needs the 'service' role."))

HOOKS_PATH = "/internal/directory/hooks"
EVENT_ID_HEADER = "X-Gitlab-Event-UUID"


def _event_id() -> str:
    sent = request.headers.get(EVENT_ID_HEADER)
    if sent is None:
        return directory.hook_id(request.get_json())
    if not 0 < len(sent) <= 36 or not sent.isprintable():
        raise Problem(400, "invalid_event_id", "Invalid event id",
                      f"{EVENT_ID_HEADER} must be 1 to 36 printable characters (a UUID).")
    return sent


@blp.route(HOOKS_PATH)
class SystemHooks(MethodView):
    @blp.arguments(SystemHookSchema)
    @blp.response(200, HookReceivedSchema)
    @blp.alt_response(400, schema=ProblemSchema, description="Not JSON, or a bad X-Gitlab-Event-UUID")
    @blp.alt_response(401, schema=ProblemSchema, description="No valid token")
    @blp.alt_response(403, schema=ProblemSchema, description="The token is not a service's")
    @blp.alt_response(409, schema=ProblemSchema,
                      description="seat_overage_blocked: the namespace blocks seat overages and has no "
                                  "paid seat left for this member (nothing was written; send it again "
                                  "once seats are bought)")
    @blp.alt_response(422, schema=ProblemSchema, description="The hook lacks a field or has a bad one")
    @blp.doc(security=[{"bearerAuth": []}], parameters=[{
        "in": "header", "name": EVENT_ID_HEADER, "schema": {"type": "string", "maxLength": 36},
        "description": "The hook's id: the same id twice is applied once (default: made from the body)"}])
    def post(self, hook: dict[str, Any]) -> dict[str, Any]:
        """Apply one system hook: group_create, group_rename, group_destroy,
        user_add_to_group, user_update_for_group or user_remove_from_group.

        Once per id, and only if newer than the last change applied to the same
        group or membership (by updated_at, else created_at): late, repeated and
        out-of-order hooks leave the same state. Each change is published as a
        `directory.*` event. Other events answer `ignored`."""
        event_id = _event_id()
        received = directory.receive(request_uow(), event_id, hook)
        return {"event_id": event_id, "outcome": received.outcome, "events": received.events}
