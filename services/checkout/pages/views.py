"""The checkout pages: pick a namespace, buy for it or grow what it has, see the
order; and the Billing pages: what each namespace bought and how to manage it.

Server-rendered; static/checkout.js prices and buys through the JSON API with
the session cookie and the CSRF token, so every step goes through the same use
cases (and funnel events) as any API client.

`/checkout?namespace_id=N` buys a plan (or upgrades); with `&mode=` it grows what
the namespace has: `add-seats`, `add-duo` (`&sku=duo_pro|duo_enterprise`, more seats
for an add-on already held too) or `buy-packs` (compute minutes, storage).
"""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, render_template, request, url_for

from identity.auth import Principal
from services.checkout.api.context import checkout
from services.checkout.api.schemas import MAX_ID
from services.checkout.domain.directory import ROLES
from services.checkout.pages.plots import seat_plot
from services.checkout.usecases import duo, managers, offers, portal, purchases, seats, subscriptions
from services.checkout.usecases.views import quote_view
from services.common.errors import NotFound, not_found
from services.common.pages import page
from services.common.web import request_uow

blp = Blueprint("checkout_pages", __name__, template_folder="templates", static_folder="static",
                static_url_path="/static/checkout")

# The page's modes for growing a namespace, and the kinds of expansion each offers.
EXPANSION_MODES = {"add-seats": ("seats",), "add-duo": ("addon",),
                   "buy-packs": ("compute_minutes", "storage")}


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
    namespace_id = page_id("namespace", raw)
    mode = request.args.get("mode")
    if mode is not None:
        return expansion_page(principal, namespace_id, mode, request.args.get("sku") or None)
    app = checkout()
    opened = offers.open_checkout(app, request_uow(), principal, namespace_id, request.args.get("plan"))
    settings = app.settings
    return render_template("checkout/checkout.html", offer=opened.offer, plans=opened.plans, plan=opened.plan,
                           quote=quote_view(opened.quote) if opened.quote else None,
                           account=opened.account, saved_card=opened.saved_card, catalog=app.catalog,
                           current_plan=app.catalog.plan_name(opened.offer.current_plan),
                           stripe_js_url=settings.stripe_js_url,
                           publishable_key=settings.stripe_publishable_key)


def expansion_page(principal: Principal, namespace_id: int, mode: str, sku: str | None) -> str:
    kinds = EXPANSION_MODES.get(mode)
    if kinds is None:
        raise NotFound("unknown_mode", "No such checkout",
                       f"There is no checkout for '{mode}'. You can add seats (mode=add-seats), add GitLab "
                       "Duo (mode=add-duo) or buy compute minutes and storage (mode=buy-packs).")
    app = checkout()
    opened = offers.open_expansion(app, request_uow, principal, namespace_id, kinds, sku)
    settings = app.settings
    catalog = app.catalog
    names = {p.id: p.name for p in catalog.plans.values()} | {a.id: a.name for a in catalog.addons.values()}
    return render_template("checkout/expand.html", mode=mode, opened=opened, catalog=catalog, names=names,
                           plan_name=catalog.plan_name(opened.plan), account=opened.account,
                           saved_card=opened.saved_card,
                           stripe_js_url=settings.stripe_js_url,
                           publishable_key=settings.stripe_publishable_key)


def pick_namespace(principal: Principal) -> str:
    owned = [ns for ns in subscriptions.my_namespaces(request_uow(), principal) if ns["role"] == "owner"]
    catalog = checkout().catalog
    return render_template("checkout/pick.html", catalog=catalog,
                           namespaces=[{**ns, "top_level": ns["parent_id"] is None,
                                        "subscribed": catalog.plans[ns["plan"]].purchasable
                                        if ns["plan"] in catalog.plans else False,
                                        "can_buy": ns["parent_id"] is None
                                        and bool(catalog.plans_above(ns["plan"]))} for ns in owned])


@blp.get("/checkout/orders/<order_id>")
@page
def order_page(principal: Principal, order_id: str) -> str:
    order, path, subscription = purchases.confirmation(request_uow(), principal, page_id("order", order_id))
    return render_template("checkout/order.html", order=order, namespace_path=path,
                           subscription=subscription, plan=checkout().catalog.plan_name(order["plan"]),
                           retry_url=retry_url(order))


# The mode that buys an expansion order's line again (its line kinds: domain/expansions.py).
MODE_OF_LINE = {"seats": "add-seats", "addon": "add-duo", "pack": "buy-packs"}


def retry_url(order: dict[str, Any]) -> str:
    """Where to try an order that was not completed again: the same checkout."""
    line = order["lines"][0] if order["kind"] == "expansion" and order["lines"] else None
    if line is None or line["kind"] not in MODE_OF_LINE:
        return url_for("checkout_pages.checkout_page", namespace_id=order["namespace_id"])
    return url_for("checkout_pages.checkout_page", namespace_id=order["namespace_id"],
                   mode=MODE_OF_LINE[line["kind"]], sku=line["sku"] if line["kind"] == "addon" else None)


@blp.get("/checkout/namespaces/<namespace_id>/duo/<sku>")
@page
def duo_page(principal: Principal, namespace_id: str, sku: str) -> str:
    """Owners assign Duo seats: the members, sortable and filterable, and a bulk action."""
    app = checkout()
    ns = page_id("namespace", namespace_id)
    sort = request.args.get("sort", "name")
    sort = sort if sort in duo.SORTS else "name"
    shown = {"true": True, "false": False}.get(request.args.get("assigned", ""))
    listing = duo.members(app, request_uow(), principal, ns, sku, sort=sort, assigned=shown)

    def query(**changes: str | None) -> str:
        params = {"sort": sort, "assigned": request.args.get("assigned"), **changes}
        return urlencode({k: v for k, v in params.items() if v})
    return render_template("checkout/duo.html", listing=listing, path=listing["namespace_path"],
                           namespace_id=ns, sku=sku,
                           product=app.catalog.addons[sku].name, sort=sort, query=query,
                           max_bulk=app.seat_rules.max_bulk_assignments)


@blp.get("/checkout/namespaces/<namespace_id>/seats")
@page
def seats_page(principal: Principal, namespace_id: str) -> str:
    """Seats in numbers, and the warning before adding members (what the preview answers)."""
    app = checkout()
    ns = page_id("namespace", namespace_id)
    usage = seats.utilization(app, request_uow(), principal, ns)
    return render_template("checkout/seats.html", usage=usage, path=usage["namespace_path"], namespace_id=ns,
                           currency=app.catalog.currency, roles=list(ROLES.values()))


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
    plot = seat_plot(sub["seat_usage"], sub["seats_detail"]["bought"], date.fromisoformat(sub["term_start"]),
                     date.fromisoformat(sub["term_end"]), app.ctx.clock.now()) if sub else None
    return render_template("checkout/billing.html", o=overview, sub=sub, cards=cards, lower_plans=lower,
                           plot=plot, history=history, people=people,
                           reasons=app.portal.auto_renew_off_reasons,
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
