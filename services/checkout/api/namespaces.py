from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from services.checkout.api.context import checkout
from services.checkout.api.schemas import (
    EntitlementsSchema,
    NamespaceSchema,
    OfferSchema,
    RenewalPreviewSchema,
    RenewalResultSchema,
    SubscriptionWithOrdersSchema,
)
from services.checkout.usecases import offers, renewals, subscriptions
from services.common.web import ProblemSchema, current_principal, request_uow

blp = Blueprint("namespaces", __name__, description="Namespaces, their subscription and entitlements")


@blp.route("/namespaces")
class MyNamespaces(MethodView):
    @blp.response(200, NamespaceSchema(many=True))
    @blp.doc(security=[{"bearerAuth": []}])
    def get(self) -> list[dict[str, Any]]:
        """The namespaces the caller is a member of, with their role."""
        return subscriptions.my_namespaces(request_uow(), current_principal())


@blp.route("/namespaces/<id:namespace_id>")
class NamespaceResource(MethodView):
    @blp.response(200, NamespaceSchema)
    @blp.doc(security=[{"bearerAuth": []}])
    def get(self, namespace_id: int) -> dict[str, Any]:
        """A namespace as its member sees it: kind, level, paid plan, my role, add-ons bought."""
        return subscriptions.describe_namespace(request_uow(), current_principal(), namespace_id)


@blp.route("/namespaces/<id:namespace_id>/checkout-offer")
class CheckoutOffer(MethodView):
    @blp.response(200, OfferSchema)
    @blp.doc(security=[{"bearerAuth": []}])
    def get(self, namespace_id: int) -> dict[str, Any]:
        """What checkout opens with for this namespace: minimum seats and why, the
        seats offered, and the SMB prompt (both set by experiments)."""
        return offers.checkout_offer(checkout(), request_uow(), current_principal(), namespace_id).view()


@blp.route("/namespaces/<id:namespace_id>/subscription")
class NamespaceSubscription(MethodView):
    @blp.response(200, SubscriptionWithOrdersSchema)
    @blp.doc(security=[{"bearerAuth": []}])
    def get(self, namespace_id: int) -> dict[str, Any]:
        """The namespace's active subscription with the orders that paid for it (members only)."""
        return subscriptions.get_subscription(request_uow(), current_principal(), namespace_id)


@blp.route("/namespaces/<id:namespace_id>/entitlements")
class NamespaceEntitlements(MethodView):
    @blp.response(200, EntitlementsSchema)
    @blp.doc(security=[{"bearerAuth": []}])
    def get(self, namespace_id: int) -> dict[str, Any]:
        """What the namespace may use now: plan, seats, add-ons and features."""
        return subscriptions.get_entitlements(checkout(), request_uow(), current_principal(),
                                              namespace_id)


@blp.route("/namespaces/<id:namespace_id>/subscription/renewal")
class Renewal(MethodView):
    @blp.response(200, RenewalPreviewSchema)
    @blp.doc(security=[{"bearerAuth": []}])
    def get(self, namespace_id: int) -> dict[str, Any]:
        """What the next renewal costs (list prices, seats raised to billable members),
        when reminders go out, and whether the card on file will still be valid."""
        app = checkout()
        return renewals.preview(app, request_uow(), current_principal(), namespace_id, app.renewal_rules)

    @blp.response(201, RenewalResultSchema)
    @blp.alt_response(402, schema=ProblemSchema, description="The card was declined")
    @blp.alt_response(409, schema=ProblemSchema, description="Too early: from 30 days before the end")
    @blp.doc(security=[{"bearerAuth": []}])
    def post(self, namespace_id: int) -> dict[str, Any]:
        """Renew now (Owners, from 30 days before the end of the term)."""
        app = checkout()
        return renewals.renew_now(app, request_uow, current_principal(), namespace_id, app.renewal_rules)
