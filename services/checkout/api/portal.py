"""The customer portal's API: what a namespace bought and how its Owners and
billing managers manage it. Thin: each view calls one use case of usecases/portal.py."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from services.checkout.api.billing import count_card_attempt
from services.checkout.api.context import checkout
from services.checkout.api.portal_schemas import (
    AcceptedSchema,
    AcceptSchema,
    AddCardSchema,
    AutoRenewInSchema,
    AutoRenewResultSchema,
    BillingOverviewSchema,
    CardListSchema,
    CustomerSchema,
    InvitationSchema,
    InviteSchema,
    KindOrderSchema,
    ManagersSchema,
    MarkedCardSchema,
    MySubscriptionSchema,
    OrderHistorySchema,
    ReasonCountSchema,
    ReasonSchema,
    ReceiptSchema,
    RefundInSchema,
    SaveOfferSchema,
    ScheduleChangeInSchema,
    SearchArgsSchema,
    SubscriptionHistorySchema,
    SubscriptionSummarySchema,
)
from services.checkout.api.schemas import CardSchema, CardSetupSchema
from services.checkout.usecases import campaigns, managers, portal, support
from services.checkout.usecases.views import card_view
from services.common.web import ProblemSchema, current_principal, request_uow

blp = Blueprint("portal", __name__, description="Manage what you bought: subscriptions, cards, orders, "
                                                "renewal (Owners and billing managers)")
SIGNED_IN: list[dict[str, list[str]]] = [{"bearerAuth": []}]


@blp.route("/subscriptions")
class MySubscriptions(MethodView):
    @blp.response(200, MySubscriptionSchema(many=True))
    @blp.doc(security=SIGNED_IN)
    def get(self) -> list[dict[str, Any]]:
        """Every active subscription of the namespaces the caller owns or manages the billing of."""
        return portal.my_subscriptions(checkout(), request_uow(), current_principal())


@blp.route("/namespaces/<id:namespace_id>/billing")
class Overview(MethodView):
    @blp.response(200, BillingOverviewSchema)
    @blp.doc(security=SIGNED_IN)
    def get(self, namespace_id: int) -> dict[str, Any]:
        """Plan, add-ons, seats, term, renewal (members); the card on file (Owners and billing managers)."""
        return portal.overview(checkout(), request_uow(), current_principal(), namespace_id)


@blp.route("/namespaces/<id:namespace_id>/billing/cards")
class Cards(MethodView):
    @blp.response(200, CardListSchema)
    @blp.alt_response(403, schema=ProblemSchema, description="Owners and billing managers only")
    @blp.doc(security=SIGNED_IN)
    def get(self, namespace_id: int) -> dict[str, Any]:
        """The cards of the billing account paying for the namespace, expired and expiring ones marked."""
        return portal.list_cards(checkout(), request_uow(), current_principal(), namespace_id)

    @blp.arguments(AddCardSchema)
    @blp.response(201, CardSchema)
    @blp.alt_response(402, schema=ProblemSchema, description="Card declined")
    @blp.alt_response(429, schema=ProblemSchema, description="Too many card attempts")
    @blp.doc(security=SIGNED_IN)
    def post(self, body: dict[str, Any], namespace_id: int) -> dict[str, Any]:
        """Save the card of a SetupIntent Stripe.js confirmed (from POST .../billing/card-setup).

        It becomes the default with `make_default: true`, or when there is no valid default card."""
        principal = current_principal()
        count_card_attempt(principal.user_id)
        card = portal.add_card(checkout(), request_uow, principal, namespace_id, body["setup_intent_id"],
                               body["make_default"])
        return card_view(card)


@blp.route("/namespaces/<id:namespace_id>/billing/card-setup")
class CardSetup(MethodView):
    @blp.response(201, CardSetupSchema)
    @blp.alt_response(429, schema=ProblemSchema, description="Too many card attempts")
    @blp.alt_response(503, schema=ProblemSchema, description="Stripe unreachable")
    @blp.doc(security=SIGNED_IN)
    def post(self, namespace_id: int) -> dict[str, Any]:
        """A SetupIntent client secret for Stripe.js, for the account paying for the namespace."""
        principal = current_principal()
        count_card_attempt(principal.user_id)
        return portal.start_card_setup(checkout(), request_uow, principal, namespace_id).__dict__


@blp.route("/namespaces/<id:namespace_id>/billing/cards/<id:card_id>/default")
class DefaultCard(MethodView):
    @blp.response(200, MarkedCardSchema)
    @blp.doc(security=SIGNED_IN)
    def put(self, namespace_id: int, card_id: int) -> dict[str, Any]:
        """Make this card the one renewals charge."""
        return card_view(portal.make_default(request_uow(), current_principal(), namespace_id, card_id))


@blp.route("/namespaces/<id:namespace_id>/billing/cards/<id:card_id>")
class Card(MethodView):
    @blp.response(204)
    @blp.alt_response(409, schema=ProblemSchema,
                      description="card_needed_for_renewal: the default or last card auto-renew needs")
    @blp.alt_response(503, schema=ProblemSchema, description="Stripe unreachable: nothing was removed")
    @blp.doc(security=SIGNED_IN)
    def delete(self, namespace_id: int, card_id: int) -> None:
        """Remove a card: it is detached at Stripe and never charged again."""
        portal.remove_card(checkout(), request_uow, current_principal(), namespace_id, card_id)


@blp.route("/namespaces/<id:namespace_id>/orders")
class Orders(MethodView):
    @blp.response(200, OrderHistorySchema)
    @blp.doc(security=SIGNED_IN)
    def get(self, namespace_id: int) -> dict[str, Any]:
        """The namespace's orders (newest first: amount, discount, status, failure, refunds) and renewals."""
        return portal.order_history(request_uow(), current_principal(), namespace_id)


@blp.route("/namespaces/<id:namespace_id>/orders/<id:order_id>/receipt")
class Receipt(MethodView):
    @blp.response(200, ReceiptSchema)
    @blp.doc(security=SIGNED_IN)
    def get(self, namespace_id: int, order_id: int) -> dict[str, Any]:
        """An order's receipt, as the receipt mail states it."""
        return portal.receipt(request_uow(), current_principal(), namespace_id, order_id)


@blp.route("/namespaces/<id:namespace_id>/subscription/auto-renew")
class AutoRenew(MethodView):
    @blp.arguments(AutoRenewInSchema)
    @blp.response(200, AutoRenewResultSchema)
    @blp.alt_response(409, schema=ProblemSchema, description="term_ended: too late to turn it back on")
    @blp.doc(security=SIGNED_IN)
    def put(self, body: dict[str, Any], namespace_id: int) -> dict[str, Any]:
        """Turn automatic renewal off (with a `reason`) or back on (until the term ends).

        The billing contact gets a confirmation mail; the answer says what happens at the term's end."""
        return portal.set_auto_renew(checkout(), request_uow(), current_principal(), namespace_id,
                                     body["enabled"], body["reason"], body["comment"])


@blp.route("/namespaces/<id:namespace_id>/subscription/scheduled-change")
class Scheduled(MethodView):
    @blp.arguments(ScheduleChangeInSchema)
    @blp.response(200, SubscriptionSummarySchema)
    @blp.alt_response(422, schema=ProblemSchema,
                      description="seats_below_billable, plan_not_lower, addon_not_held, addon_needs_plan")
    @blp.doc(security=SIGNED_IN)
    def put(self, body: dict[str, Any], namespace_id: int) -> dict[str, Any]:
        """Schedule fewer seats, a lower plan or add-ons dropped for the next renewal."""
        return portal.schedule_change(checkout(), request_uow(), current_principal(), namespace_id,
                                      body["seats"], body["plan"], body["drop_addons"])

    @blp.response(200, SubscriptionSummarySchema)
    @blp.doc(security=SIGNED_IN)
    def delete(self, namespace_id: int) -> dict[str, Any]:
        """Cancel the change scheduled for the next renewal."""
        return portal.cancel_change(checkout(), request_uow(), current_principal(), namespace_id)


@blp.route("/namespaces/<id:namespace_id>/subscription/save-offer")
class SaveOffer(MethodView):
    @blp.response(200, SaveOfferSchema)
    @blp.doc(security=SIGNED_IN)
    def get(self, namespace_id: int) -> dict[str, Any]:
        """What the cancel flow offers before automatic renewal goes off (none by default)."""
        return {"offer": portal.save_offer(request_uow(), current_principal(), namespace_id)}


@blp.route("/auto-renew-reasons")
class Reasons(MethodView):
    @blp.response(200, ReasonSchema(many=True))
    def get(self) -> list[dict[str, str]]:
        """The reasons one can give for turning automatic renewal off."""
        return [{"reason": k, "label": v} for k, v in checkout().portal.auto_renew_off_reasons.items()]


@blp.route("/admin/auto-renew-reasons")
class ReasonCounts(MethodView):
    @blp.response(200, ReasonCountSchema(many=True))
    @blp.doc(security=SIGNED_IN)
    def get(self) -> list[dict[str, Any]]:
        """How often each reason was given (admins)."""
        campaigns.require_admin(current_principal())
        return portal.auto_renew_reasons(checkout(), request_uow())


@blp.route("/namespaces/<id:namespace_id>/billing/managers")
class Managers(MethodView):
    @blp.response(200, ManagersSchema)
    @blp.doc(security=SIGNED_IN)
    def get(self, namespace_id: int) -> dict[str, Any]:
        """Who manages the namespace's billing besides its Owners, and who is invited."""
        return managers.list_managers(request_uow(), current_principal(), namespace_id)


@blp.route("/namespaces/<id:namespace_id>/billing/managers/invitations")
class Invitations(MethodView):
    @blp.arguments(InviteSchema)
    @blp.response(201, InvitationSchema)
    @blp.alt_response(403, schema=ProblemSchema, description="not_owner: Owners invite")
    @blp.doc(security=SIGNED_IN)
    def post(self, body: dict[str, Any], namespace_id: int) -> dict[str, Any]:
        """Invite a person by email: they get a link that works once and expires."""
        return managers.invite(checkout(), request_uow(), current_principal(), namespace_id, body["email"])


@blp.route("/namespaces/<id:namespace_id>/billing/managers/invitations/<id:invitation_id>")
class Invitation(MethodView):
    @blp.response(204)
    @blp.doc(security=SIGNED_IN)
    def delete(self, namespace_id: int, invitation_id: int) -> None:
        """Withdraw an invitation not yet accepted (Owners)."""
        managers.withdraw(request_uow(), current_principal(), namespace_id, invitation_id)


@blp.route("/namespaces/<id:namespace_id>/billing/managers/<id:user_id>")
class Manager(MethodView):
    @blp.response(204)
    @blp.doc(security=SIGNED_IN)
    def delete(self, namespace_id: int, user_id: int) -> None:
        """Remove a billing manager (Owners)."""
        managers.remove(request_uow(), current_principal(), namespace_id, user_id)


@blp.route("/billing-invitations/accept")
class Accept(MethodView):
    @blp.arguments(AcceptSchema)
    @blp.response(200, AcceptedSchema)
    @blp.alt_response(409, schema=ProblemSchema, description="invitation_used or invitation_expired")
    @blp.doc(security=SIGNED_IN)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Accept an invitation: the signed-in person it names manages the namespace's billing."""
        return managers.accept(request_uow(), current_principal(), body["token"])


@blp.route("/admin/customers")
class Customers(MethodView):
    @blp.arguments(SearchArgsSchema, location="query")
    @blp.response(200, CustomerSchema(many=True))
    @blp.doc(security=SIGNED_IN)
    def get(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        """Find subscriptions and orders by namespace id or path, email, or order id (admins)."""
        return support.search(request_uow(), current_principal(), namespace=args.get("namespace"),
                              email=args.get("email"), order_id=args.get("order_id"))


@blp.route("/admin/namespaces/<id:namespace_id>/history")
class History(MethodView):
    @blp.response(200, SubscriptionHistorySchema)
    @blp.doc(security=SIGNED_IN)
    def get(self, namespace_id: int) -> dict[str, Any]:
        """Orders, renewals and dunning attempts, trials, notices and changes, oldest first (admins)."""
        return support.history(request_uow(), current_principal(), namespace_id)


@blp.route("/admin/orders/<id:order_id>/refunds")
class Refunds(MethodView):
    @blp.arguments(RefundInSchema)
    @blp.response(201, KindOrderSchema)
    @blp.alt_response(409, schema=ProblemSchema, description="nothing_to_refund")
    @blp.alt_response(422, schema=ProblemSchema, description="refund_too_large")
    @blp.doc(security=SIGNED_IN)
    def post(self, body: dict[str, Any], order_id: int) -> dict[str, Any]:
        """Refund an order in full or in part, with a reason, through Stripe (admins)."""
        return support.refund(checkout(), request_uow(), current_principal(), order_id, body["amount"],
                              body["reason"])
