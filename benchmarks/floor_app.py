"""The floor of a database-backed request: bare Flask answering POST /quotes
with the same JSON as benchmarks/bare_app.py, after one parameterised SELECT
and one INSERT in one transaction on the same PostgreSQL, through the same
driver (psycopg 3) and the same SQLAlchemy pool the services use
(persistence/db.py `make_engine`). No auth, no schemas, no flags: what any request that reads a row and
writes a row must pay, so a hot path's ratio to it says how much the
application adds on top.

    FLOOR_DATABASE_URL=postgresql://... gunicorn --config deploy/gunicorn.conf.py \
        'benchmarks.floor_app:create_app()'

FLOOR_SYNCHRONOUS_COMMIT=off makes the commit not wait for the disk (as
checkout and trials commit what only records what a person saw): the floor
of a request whose write may be lost in a crash.

The SELECT reads a namespace by primary key (checkout's `namespaces`); the
INSERT appends to a table of its own (`floor_events`, made at start), shaped
like a funnel row (a uuid, a step, a JSON document, a time).
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime

from flask import Flask, Response, jsonify, request
from sqlalchemy import text

from benchmarks.bare_app import SAMPLE_QUOTE
from persistence.db import make_engine

_SELECT = text("SELECT id, path, plan FROM namespaces WHERE id = :id")
_INSERT = text("INSERT INTO floor_events (event_id, step, properties, occurred_at) "
               "VALUES (:event_id, :step, CAST(:properties AS JSONB), :occurred_at)")
_RELAXED = text("SET LOCAL synchronous_commit TO OFF")
_TABLE = text("CREATE TABLE IF NOT EXISTS floor_events (id BIGSERIAL PRIMARY KEY, event_id VARCHAR(36) "
              "UNIQUE NOT NULL, step VARCHAR(64) NOT NULL, properties JSONB NOT NULL, "
              "occurred_at TIMESTAMPTZ NOT NULL)")


def create_app() -> Flask:
    engine = make_engine(os.environ["FLOOR_DATABASE_URL"])
    with engine.begin() as conn:
        conn.execute(_TABLE)
    relaxed = os.environ.get("FLOOR_SYNCHRONOUS_COMMIT", "on").lower() == "off"
    app = Flask("floor")
    app.json.sort_keys = False  # type: ignore[attr-defined]  # as the services do

    @app.post("/quotes")
    def quote() -> Response:
        body = request.get_json(silent=True) or {}
        namespace_id = int(body.get("namespace_id", 100))
        with engine.begin() as conn:
            if relaxed:
                conn.execute(_RELAXED)
            row = conn.execute(_SELECT, {"id": namespace_id}).first()
            conn.execute(_INSERT, {"event_id": str(uuid.uuid4()), "step": "quoted",
                                   "properties": json.dumps({"seats": body.get("seats", 5)}),
                                   "occurred_at": datetime.now(UTC)})
        return jsonify({**SAMPLE_QUOTE, "namespace_id": namespace_id, "seats": body.get("seats", 5),
                        "plan": row.plan if row is not None else "free"})

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok", service="floor")

    return app
