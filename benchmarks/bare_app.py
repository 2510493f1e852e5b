"""The ceiling's floor: a bare Flask app answering POST /quotes with JSON of the
same size and shape as checkout's quote, and nothing else (no auth, no
database, no schemas, no telemetry). Served by gunicorn with the production
settings (deploy/gunicorn.conf.py) in benchmarks/ceiling.py.

    gunicorn --config deploy/gunicorn.conf.py 'benchmarks.bare_app:create_app()'
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify, request

# A real quote for 5 Premium seats (POST /quotes on checkout), field for field.
SAMPLE_QUOTE: dict[str, Any] = {
    "namespace_id": 100, "plan": "premium", "seats": 5, "minimum_seats": 2, "billable_members": 2,
    "currency": "usd", "catalog_version": "2026-11-01", "term_start": "2026-11-21", "term_end": "2027-11-21",
    "lines": [{"sku": "premium", "kind": "plan", "description": "Premium plan, 5 seats, 12 months",
               "quantity": 5, "unit_amount": 34800, "amount": 174000, "discount": 0, "net": 174000}],
    "subtotal": 174000, "discount_total": 0, "total": 174000, "discount_code": None,
    "upgrades_subscription_id": None,
}


def create_app() -> Flask:
    app = Flask("bare")
    app.json.sort_keys = False  # type: ignore[attr-defined]  # as the services do

    @app.post("/quotes")
    def quote() -> Response:
        body = request.get_json(silent=True) or {}
        # Echo the ids so the answer depends on the request, like a real one.
        return jsonify({**SAMPLE_QUOTE, "namespace_id": body.get("namespace_id", 100),
                        "seats": body.get("seats", 5)})

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok", service="bare")

    return app
