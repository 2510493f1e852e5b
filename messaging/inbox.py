"""Inbox: each event a service receives from another is handled once, by its id.

The relay (messaging/relay.py) delivers outbox rows at least once to
`POST /internal/events`. The consumer stores the event id in its own
`inbox_events` table (a concrete class built on `InboxMixin`) in the same
transaction as the handler's writes, so a redelivery finds the row and does
nothing, and a handler that fails leaves no row and is retried.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypedDict

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import validate
from sqlalchemy import String
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from funnel.telemetry import Traffic
from persistence.db import UTCDateTime
from services.common.logs import request_id_var
from services.common.problems import Problem
from services.common.service import ServiceUnitOfWork
from services.common.web import ProblemSchema, current_principal, request_uow

EVENTS_PATH = "/internal/events"
SERVICE_ROLE = "service"
DUPLICATE = "duplicate"
IGNORED = "ignored"


class InboxMixin:
    __tablename__ = "inbox_events"

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    topic: Mapped[str] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(32))  # the publishing service
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    outcome: Mapped[str | None] = mapped_column(String(200))


class Envelope(TypedDict):
    """An event on the wire."""

    id: str
    topic: str
    source: str
    occurred_at: str  # ISO-8601, with offset
    payload: dict[str, Any]


# Gets the consumer's unit of work and the event's payload; returns a short outcome.
# A handler takes its topic's payload: the TypedDict in contracts/events.py.
Handler = Callable[[ServiceUnitOfWork, Any], str]


def receive(uow: ServiceUnitOfWork, model: type[InboxMixin], event: Envelope | dict[str, Any],
            handlers: Mapping[str, Handler]) -> str:
    """Handle `event` once, inside the caller's open unit of work, and commit.

    The inbox row is written before the handler runs and commits with its
    writes; if the handler raises, neither is kept and the sender retries.
    """
    event_id = str(event["id"])
    if uow.session.get(model, event_id) is not None:
        return DUPLICATE
    row = model(event_id=event_id, topic=event["topic"], source=event["source"],  # type: ignore[call-arg]
                received_at=uow.now)
    try:
        # A savepoint, so that losing the race to a concurrent delivery of the same
        # event does not abort the whole transaction on PostgreSQL.
        with uow.session.begin_nested():
            uow.session.add(row)
            uow.session.flush()
    except IntegrityError:
        return DUPLICATE
    payload = dict(event["payload"])
    uow.traffic = _traffic_of(payload, uow.traffic)
    # The handler's log lines carry the request id of the request that caused the event.
    token = request_id_var.set(payload["request_id"]) if payload.get("request_id") else None
    try:
        handler = handlers.get(event["topic"])
        outcome = handler(uow, payload)[:200] if handler else IGNORED
        row.outcome = outcome
        uow.commit()
    finally:
        if token is not None:
            request_id_var.reset(token)
    return outcome


def _traffic_of(payload: dict[str, Any], default: Traffic) -> Traffic:
    """The publisher's unit of work stamps its traffic source on every event, so
    what a handler records for synthetic traffic stays out of the analyses."""
    try:
        return Traffic(payload.get("traffic", default.value))
    except ValueError:
        return default


# --- HTTP ----------------------------------------------------------------------------
def services_only(detail: str) -> Callable[[], None]:
    """A `before_request` hook admitting only tokens with the 'service' role. It runs
    before the body is validated: a stranger learns nothing about the format."""

    def check() -> None:
        if SERVICE_ROLE not in current_principal().roles:
            raise Problem(403, "service_only", "Services only", detail)

    return check


class EventEnvelopeSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    id = ma.fields.String(required=True, validate=validate.Length(1, 36))
    topic = ma.fields.String(required=True, validate=validate.Length(1, 100))
    source = ma.fields.String(required=True, validate=validate.Length(1, 32),
                              metadata={"description": "The publishing service"})
    occurred_at = ma.fields.AwareDateTime(required=True)
    payload = ma.fields.Dict(required=True, keys=ma.fields.String())


class EventOutcomeSchema(ma.Schema):
    outcome = ma.fields.String(metadata={"description": "What the handler did, 'duplicate' or 'ignored'"})


def events_blueprint(model: type[InboxMixin], handlers: Mapping[str, Handler],
                     owners: Mapping[str, str] | None = None) -> Blueprint:
    """`POST /internal/events` for the relays of other services (token role 'service').

    `owners` maps a topic prefix to the one service allowed to publish it
    ("trial." -> "trials"): an event from anyone else is refused."""
    blp = Blueprint("events", __name__, description="Events from other services, handled once each")

    blp.before_request(services_only(
        "Only other services may deliver events; the token needs the 'service' role."))

    @blp.route(EVENTS_PATH)
    class Events(MethodView):
        @blp.arguments(EventEnvelopeSchema)
        @blp.response(200, EventOutcomeSchema)
        @blp.alt_response(401, schema=ProblemSchema, description="No valid token")
        @blp.alt_response(403, schema=ProblemSchema, description="The token is not a service's")
        @blp.doc(security=[{"bearerAuth": []}])
        def post(self, body: dict[str, Any]) -> dict[str, Any]:
            """Receive one event (at least once); a redelivery answers 'duplicate'."""
            owner = next((o for prefix, o in (owners or {}).items() if body["topic"].startswith(prefix)),
                         body["source"] if owners is None else None)
            signer = current_principal().service  # a service's own key names who sends
            if owner != body["source"] or signer not in (None, body["source"]):
                raise Problem(403, "source_not_allowed", "Not this service's event",
                              f"{signer or body['source']} may not publish {body['topic']}"
                              f"{'' if signer in (None, body['source']) else ' as ' + body['source']}.")
            envelope = Envelope(id=body["id"], topic=body["topic"], source=body["source"],
                                occurred_at=body["occurred_at"].isoformat(), payload=body["payload"])
            uow = request_uow()
            with uow:
                return {"outcome": receive(uow, model, envelope, handlers)}

    return blp
