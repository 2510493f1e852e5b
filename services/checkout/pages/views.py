"""The checkout pages: pick a namespace, buy for it, see the order.

Server-rendered; static/checkout.js prices and buys through the JSON API with
the session cookie and the CSRF token, so every step goes through the same use
cases (and funnel events) as any API client.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request

from services.checkout.api.context import checkout
from services.checkout.domain.catalog import Catalog, Plan
from services.checkout.domain.pricing import Selection
from services.checkout.usecases import billing, offers, purchases, quotes, subscriptions
from services.checkout.usecases.views import quote_view
from services.common.auth import Principal
from services.common.pages import page
from services.common.problems import Problem, not_found
from services.common.web import request_uow

blp = Blueprint("checkout_pages", __name__, template_folder="templates", static_folder="static",
                static_url_path="/static/checkout")
MAX_ID = 2**63 - 1


def plans_above(catalog: Catalog, current: str) -> list[Plan]:
    """What a namespace on `current` can buy: the purchasable plans ranked higher."""
    rank = catalog.plans[current].rank if current in catalog.plans else 0
    return sorted((p for p in catalog.plans.values() if p.purchasable and p.rank > rank),
                  key=lambda p: p.rank)


def _account_fields(principal: Principal) -> dict[str, str]:
    """The billing account to prefill the form with (empty before the first purchase)."""
    try:
        account, _ = billing.get_account(request_uow(), principal)
    except Problem as problem:
        if problem.code != "billing_account_missing":
            raise
        return {}
    return {name: getattr(account, name) or "" for name in billing.ACCOUNT_FIELDS}


@blp.get("/checkout")
@page
def checkout_page(principal: Principal) -> str:
    namespace_id = request.args.get("namespace_id", type=int)
    if namespace_id is None:
        return pick_namespace(principal)
    if not 1 <= namespace_id <= MAX_ID:
        raise not_found("namespace", namespace_id)
    namespace = subscriptions.describe_namespace(request_uow(), principal, namespace_id)
    if namespace["role"] != "owner":
        raise Problem(403, "not_owner", "Owner role required",
                      f"Only Owners of {namespace['path']} can buy for it.")
    app = checkout()
    offer = offers.checkout_offer(app, request_uow(), principal, namespace_id)
    plans = plans_above(app.catalog, offer.current_plan)
    quote = None
    if plans:
        quote = quote_view(quotes.opening_quote(app, request_uow(), principal, namespace_id,
                                                Selection(plans[0].id, offer.default_seats)))
    settings = app.ctx.settings
    return render_template("checkout/checkout.html", offer=offer, plans=plans, quote=quote,
                           account=_account_fields(principal), catalog=app.catalog,
                           current_plan=app.catalog.plans[offer.current_plan].name,
                           stripe_js_url=settings.stripe_js_url,
                           publishable_key=settings.stripe_publishable_key)


def pick_namespace(principal: Principal) -> str:
    owned = [ns for ns in subscriptions.my_namespaces(request_uow(), principal) if ns["role"] == "owner"]
    catalog = checkout().catalog
    return render_template("checkout/pick.html", catalog=catalog,
                           namespaces=[{**ns, "can_buy": ns["parent_id"] is None
                                        and bool(plans_above(catalog, ns["plan"]))} for ns in owned])


@blp.get("/checkout/orders/<id:order_id>")
@page
def order_page(principal: Principal, order_id: int) -> str:
    order = purchases.get_order(request_uow(), principal, order_id)
    namespace = subscriptions.describe_namespace(request_uow(), principal, order["namespace_id"])
    subscription: dict[str, Any] | None = None
    if order["status"] == "completed":
        try:
            subscription = subscriptions.get_subscription(request_uow(), principal, order["namespace_id"])
        except Problem as problem:  # bought, then ended since (or refunded)
            if problem.code != "no_subscription":
                raise
    return render_template("checkout/order.html", order=order, namespace=namespace,
                           subscription=subscription, plan=checkout().catalog.plans[order["plan"]].name)
