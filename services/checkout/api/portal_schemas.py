"""The customer portal's request and response schemas (they also generate /openapi.json)."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from services.checkout.api.schemas import (
    CardSchema,
    LineSchema,
    OrderSchema,
    RenewalQuoteSchema,
    SubscriptionSchema,
)
from services.common.schemas import Pattern, StrictSchema, printable


class ProductSchema(ma.Schema):
    sku = ma.fields.String()
    name = ma.fields.String()
    seats = ma.fields.Integer()


class SeatsSchema(ma.Schema):
    bought = ma.fields.Integer(metadata={"description": "Seats in the subscription"})
    in_use = ma.fields.Integer(metadata={"description": "Billable members now"})
    max_used = ma.fields.Integer(metadata={"description": "Highest seats in use at any moment this term"})
    owed = ma.fields.Integer(metadata={"description": "Max seats used beyond those bought"})


class SeatPointSchema(ma.Schema):
    at = ma.fields.String(metadata={"description": "When seats in use changed (ISO 8601)"})
    seats_in_use = ma.fields.Integer()


class UpcomingRenewalSchema(RenewalQuoteSchema):
    auto = ma.fields.Boolean(metadata={"description": "Charged automatically on renewal_date"})


class ScheduledChangeSchema(ma.Schema):
    seats = ma.fields.Integer(allow_none=True)
    plan = ma.fields.String(allow_none=True)
    drop_addons = ma.fields.List(ma.fields.String())
    effective = ma.fields.String(metadata={"description": "The renewal date it applies at"})


class SubscriptionSummarySchema(SubscriptionSchema):
    plan_name = ma.fields.String()
    addons = ma.fields.List(ma.fields.Nested(ProductSchema), metadata={
        "description": "Add-ons and packs the subscription holds"})
    seats_detail = ma.fields.Nested(SeatsSchema)
    seat_usage = ma.fields.List(ma.fields.Nested(SeatPointSchema), metadata={
        "description": "Seats in use over the term, a point per change (the page's plot)"})
    auto_renew_off_reason = ma.fields.String(allow_none=True)
    renewal = ma.fields.Nested(UpcomingRenewalSchema, metadata={
        "description": "The next renewal: the same quote the reminders state and the charge uses"})
    ends_on = ma.fields.String(allow_none=True, metadata={"description": "Set when it will not renew"})
    grace_ends = ma.fields.String()
    manual_renewal_from = ma.fields.String()
    can_renew_now = ma.fields.Boolean()
    days_left = ma.fields.Integer()
    scheduled_change = ma.fields.Nested(ScheduledChangeSchema, allow_none=True)


class MySubscriptionSchema(SubscriptionSummarySchema):
    namespace_path = ma.fields.String()
    namespace_name = ma.fields.String()


class MarkedCardSchema(CardSchema):
    expired = ma.fields.Boolean()
    expiring = ma.fields.Boolean(metadata={
        "description": "Ends within the expiry window, or before the renewal it would pay"})


class BillingOverviewSchema(ma.Schema):
    namespace_id = ma.fields.Integer()
    namespace_path = ma.fields.String()
    namespace_name = ma.fields.String()
    plan = ma.fields.String()
    plan_name = ma.fields.String()
    role = ma.fields.String(allow_none=True)
    billing_manager = ma.fields.Boolean()
    can_manage = ma.fields.Boolean()
    subscription = ma.fields.Nested(SubscriptionSummarySchema, allow_none=True)
    card = ma.fields.Nested(MarkedCardSchema, allow_none=True, metadata={
        "description": "The default card: whether it will do for everyone; which card for managers only"})


class CardListSchema(ma.Schema):
    billing_account_id = ma.fields.Integer()
    company = ma.fields.String()
    email = ma.fields.String()
    renewing = ma.fields.List(ma.fields.String(), metadata={
        "description": "Namespaces whose automatic renewal charges this account's default card"})
    cards = ma.fields.List(ma.fields.Nested(MarkedCardSchema))


class RefundSchema(ma.Schema):
    amount = ma.fields.Integer(metadata={"description": "Cents given back"})
    at = ma.fields.String()
    reason = ma.fields.String(allow_none=True)


class KindOrderSchema(OrderSchema):
    kind = ma.fields.String(metadata={"description": "purchase or upgrade"})


class HistoryOrderSchema(KindOrderSchema):
    description = ma.fields.String()
    refunds = ma.fields.List(ma.fields.Nested(RefundSchema))


class RenewalChargeSchema(ma.Schema):
    renewal_date = ma.fields.String()
    status = ma.fields.String()
    amount = ma.fields.Integer()
    attempts = ma.fields.Integer()
    manual = ma.fields.Boolean()
    failure = ma.fields.String(allow_none=True)
    changes = ma.fields.List(ma.fields.String())


class OrderHistorySchema(ma.Schema):
    orders = ma.fields.List(ma.fields.Nested(HistoryOrderSchema))
    renewals = ma.fields.List(ma.fields.Nested(RenewalChargeSchema))


class ReceiptCardSchema(ma.Schema):
    brand = ma.fields.String()
    last4 = ma.fields.String()
    exp_month = ma.fields.Integer()
    exp_year = ma.fields.Integer()


class ReceiptSchema(HistoryOrderSchema):
    order_id = ma.fields.Integer()
    namespace_path = ma.fields.String()
    company = ma.fields.String(allow_none=True)
    card = ma.fields.Nested(ReceiptCardSchema, allow_none=True)
    lines = ma.fields.List(ma.fields.Nested(LineSchema))


class AddCardSchema(StrictSchema):
    setup_intent_id = ma.fields.String(required=True, validate=Pattern(
        r"^seti_[A-Za-z0-9]{1,64}$", error="Not a SetupIntent id."))
    make_default = ma.fields.Boolean(load_default=None, metadata={
        "description": "Make it the card renewals charge. Left out: only if there is no valid default card."})


class AutoRenewInSchema(StrictSchema):
    enabled = ma.fields.Boolean(required=True)
    reason = ma.fields.String(load_default=None, validate=[validate.Length(1, 32), printable()], metadata={
        "description": "Required to turn it off: one of GET /auto-renew-reasons"})
    comment = ma.fields.String(load_default=None, validate=[validate.Length(max=500), printable()])


class AutoRenewResultSchema(SubscriptionSchema):
    auto_renew_off_reason = ma.fields.String(allow_none=True)
    ends_on = ma.fields.String(allow_none=True)
    grace_ends = ma.fields.String()
    at_term_end = ma.fields.String(metadata={"description": "What happens at the end of the term, in words"})


class ReasonSchema(ma.Schema):
    reason = ma.fields.String()
    label = ma.fields.String()


class ReasonCountSchema(ReasonSchema):
    count = ma.fields.Integer()


class SaveOfferSchema(ma.Schema):
    offer = ma.fields.Dict(allow_none=True, metadata={
        "description": "What to offer before automatic renewal goes off (the cancel-save-offer flag); "
                       "null: no offer"})


class InviteSchema(StrictSchema):
    email = ma.fields.Email(required=True, validate=validate.Length(max=254))


class InvitationSchema(ma.Schema):
    id = ma.fields.Integer()
    email = ma.fields.String()
    expires_at = ma.fields.String()
    created_at = ma.fields.String()


class ManagerSchema(ma.Schema):
    user_id = ma.fields.Integer()
    email = ma.fields.String()
    since = ma.fields.String()


class ManagersSchema(ma.Schema):
    managers = ma.fields.List(ma.fields.Nested(ManagerSchema))
    invitations = ma.fields.List(ma.fields.Nested(InvitationSchema), metadata={
        "description": "Invitations not yet accepted, withdrawn or expired"})


class AcceptSchema(StrictSchema):
    token = ma.fields.String(required=True, validate=[validate.Length(20, 100), Pattern(
        r"^[A-Za-z0-9_-]+$", error="Not an invitation token.")])


class AcceptedSchema(ma.Schema):
    namespace_id = ma.fields.Integer()


# --- support (admins) ---------------------------------------------------------------------
class SearchArgsSchema(StrictSchema):
    namespace = ma.fields.String(validate=[validate.Length(1, 255), printable()], metadata={
        "description": "A namespace id or full path"})
    email = ma.fields.String(validate=[validate.Length(3, 254), printable()])
    order_id = ma.fields.Integer(strict=False, validate=validate.Range(1, 2**63 - 1))


class CustomerSchema(ma.Schema):
    namespace_id = ma.fields.Integer()
    namespace_path = ma.fields.String()
    plan = ma.fields.String()
    subscriptions = ma.fields.List(ma.fields.Nested(SubscriptionSchema))
    orders = ma.fields.List(ma.fields.Nested(KindOrderSchema))


class HistoryEventSchema(ma.Schema):
    at = ma.fields.String()
    what = ma.fields.String()
    order_id = ma.fields.Integer(allow_none=True)
    detail = ma.fields.String()


class SubscriptionHistorySchema(ma.Schema):
    namespace_id = ma.fields.Integer()
    namespace_path = ma.fields.String()
    plan = ma.fields.String()
    events = ma.fields.List(ma.fields.Nested(HistoryEventSchema))


class RefundInSchema(StrictSchema):
    amount = ma.fields.Integer(strict=True, load_default=None, validate=validate.Range(1, 10**12), metadata={
        "description": "Cents to give back; left out: all that is left"})
    reason = ma.fields.String(required=True, validate=[validate.Length(3, 500), printable()])


class ScheduleChangeInSchema(StrictSchema):
    seats = ma.fields.Integer(strict=True, load_default=None, validate=validate.Range(1, 1_000_000))
    plan = ma.fields.String(load_default=None, validate=[validate.Length(1, 32), printable()])
    drop_addons = ma.fields.List(ma.fields.String(validate=[validate.Length(1, 32), printable()]),
                                 load_default=list, validate=validate.Length(max=10))
