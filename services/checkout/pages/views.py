"""The checkout pages: pick a namespace, buy for it, see the order; and the
Billing pages: what each namespace bought and how to manage it.

Server-rendered; static/checkout.js prices and buys through the JSON API with
the session cookie and the CSRF token, so every step goes through the same use
cases (and funnel events) as any API client.
"""

from __future__ import annotations

from flask import Blueprint, render_template, request

from services.checkout.api.context import checkout
from services.checkout.api.schemas import MAX_ID
from services.checkout.usecases import managers, offers, portal, purchases, subscriptions
from services.checkout.usecases.views import quote_view
from services.common.auth import Principal
from services.common.errors import not_found
from services.common.pages import page
from services.common.web import request_uow

blp = Blueprint("checkout_pages", __name__, template_folder="templates", static_folder="static",
                static_url_path="/static/checkout")


def page_id(what: str, raw: str) -> int:
    """An id from a page's URL: a positive 64-bit integer, else a 404 page."""
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_ID:
        raise not_found(what, raw or '""')
    return value


@blp.get("/checkout")
@page
def checkout_page(principal: Principal) -> str:
    raw = request.args.get("namespace_id")
    if raw is None:
        return pick_namespace(principal)
    app = checkout()
    opened = offers.open_checkout(app, request_uow(), principal, page_id("namespace", raw))
    settings = app.settings
    return render_template("checkout/checkout.html", offer=opened.offer, plans=opened.plans,
                           quote=quote_view(opened.quote) if opened.quote else None,
                           account=opened.account, catalog=app.catalog,
                           current_plan=app.catalog.plan_name(opened.offer.current_plan),
                           stripe_js_url=settings.stripe_js_url,
                           publishable_key=settings.stripe_publishable_key)


def pick_namespace(principal: Principal) -> str:
    owned = [ns for ns in subscriptions.my_namespaces(request_uow(), principal) if ns["role"] == "owner"]
    catalog = checkout().catalog
    return render_template("checkout/pick.html", catalog=catalog,
                           namespaces=[{**ns, "can_buy": ns["parent_id"] is None
                                        and bool(catalog.plans_above(ns["plan"]))} for ns in owned])


@blp.get("/checkout/orders/<order_id>")
@page
def order_page(principal: Principal, order_id: str) -> str:
    order, path, subscription = purchases.confirmation(request_uow(), principal, page_id("order", order_id))
    return render_template("checkout/order.html", order=order, namespace_path=path,
                           subscription=subscription, plan=checkout().catalog.plan_name(order["plan"]))


@blp.get("/billing")
@page
def billing_list(principal: Principal) -> str:
    """The namespaces the caller belongs to or manages the billing of, with their plan."""
    return render_template("checkout/billing_list.html",
                           namespaces=portal.billing_namespaces(request_uow(), principal),
                           catalog=checkout().catalog)


@blp.get("/billing/<namespace_id>")
@page
def billing_page(principal: Principal, namespace_id: str) -> str:
    app = checkout()
    ns = page_id("namespace", namespace_id)
    overview = portal.overview(app, request_uow(), principal, ns)
    cards = history = people = None
    if overview["can_manage"] and overview["subscription"] is not None:
        cards = portal.list_cards(app, request_uow(), principal, ns)
    if overview["can_manage"]:
        history = portal.order_history(request_uow(), principal, ns)
        people = managers.list_managers(request_uow(), principal, ns)
    sub = overview["subscription"]
    current = app.catalog.plans.get(sub["plan"]) if sub else None
    lower = [p for p in app.catalog.plans.values() if current and p.purchasable and p.rank < current.rank]
    return render_template("checkout/billing.html", o=overview, sub=sub, cards=cards, lower_plans=lower,
                           history=history, people=people, reasons=app.portal.auto_renew_off_reasons,
                           stripe_js_url=app.settings.stripe_js_url,
                           publishable_key=app.settings.stripe_publishable_key)


@blp.get("/billing/invitation")
@page
def invitation_page(principal: Principal) -> str:
    token = request.args.get("token", "")
    invitation = managers.describe_invitation(request_uow(), token)
    return render_template("checkout/invitation.html", invitation=invitation, token=token)


@blp.get("/billing/<namespace_id>/orders/<order_id>")
@page
def receipt_page(principal: Principal, namespace_id: str, order_id: str) -> str:
    receipt = portal.receipt(request_uow(), principal, page_id("namespace", namespace_id),
                             page_id("order", order_id))
    return render_template("checkout/receipt.html", r=receipt,
                           plan=checkout().catalog.plan_name(receipt["plan"]))
