from __future__ import annotations

from typing import Any

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint

from identity.auth import Principal
from services.checkout.api.context import checkout
from services.checkout.api.schemas import CatalogSchema
from services.checkout.usecases import quotes
from services.common.web import current_principal, request_uow

blp = Blueprint("catalog", __name__, description="Plans, add-ons and packs with list prices")


@blp.route("/plans")
class Plans(MethodView):
    @blp.response(200, CatalogSchema)
    def get(self) -> dict[str, Any]:
        """The price list (public; recorded as a funnel step when signed in)."""
        app = checkout()
        principal: Principal | None = (
            current_principal() if request.headers.get("Authorization") else None)
        quotes.list_plans(app, request_uow(), principal)
        cat = app.catalog
        months = cat.term_months
        return {
            "version": cat.version, "currency": cat.currency, "term_months": months,
            "max_seats": cat.max_seats,
            "plans": [{**p.__dict__, "monthly_unit_amount": p.unit_amount // months}
                      for p in cat.plans.values()],
            "addons": [{**a.__dict__, "monthly_unit_amount": a.unit_amount // months}
                       for a in cat.addons.values()],
            "packs": [p.__dict__ for p in cat.packs.values()],
        }
