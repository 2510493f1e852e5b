"""Request and response schemas (they also generate /openapi.json)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import validate

from services.checkout.domain.directory import (
    GROUP_CREATE,
    GROUP_DESTROY,
    GROUP_RENAME,
    MEMBER_EVENTS,
    ROLES,
)
from services.common.schemas import Pattern, StrictSchema, printable

MAX_SEATS_ACCEPTED = 1_000_000  # beyond any catalog limit: the domain says how many are sold
MAX_ID = 2**63 - 1  # ids are 64-bit in the database


def _int(**kwargs: object) -> ma.fields.Integer:
    return ma.fields.Integer(strict=True, **kwargs)  # type: ignore[arg-type]


# --- catalog -----------------------------------------------------------------
class PlanSchema(ma.Schema):
    id = ma.fields.String()
    name = ma.fields.String()
    unit_amount = ma.fields.Integer(metadata={"description": "Cents per seat per year"})
    monthly_unit_amount = ma.fields.Integer(metadata={"description": "Cents per seat per month"})
    purchasable = ma.fields.Boolean()
    features = ma.fields.List(ma.fields.String())


class AddOnSchema(ma.Schema):
    id = ma.fields.String()
    name = ma.fields.String()
    unit_amount = ma.fields.Integer()
    monthly_unit_amount = ma.fields.Integer()
    requires_plans = ma.fields.List(ma.fields.String())
    features = ma.fields.List(ma.fields.String())


class PackSchema(ma.Schema):
    id = ma.fields.String()
    name = ma.fields.String()
    unit_amount = ma.fields.Integer(metadata={"description": "Cents per pack (per year if recurring)"})
    recurring = ma.fields.Boolean()
    size = ma.fields.Integer(metadata={"description": "Units per pack"})
    unit = ma.fields.String(metadata={"description": "minutes or GiB"})
    max_quantity = ma.fields.Integer(metadata={"description": "Packs per order"})


class CatalogSchema(ma.Schema):
    version = ma.fields.String()
    currency = ma.fields.String()
    term_months = ma.fields.Integer()
    max_seats = ma.fields.Integer()
    plans = ma.fields.List(ma.fields.Nested(PlanSchema))
    addons = ma.fields.List(ma.fields.Nested(AddOnSchema))
    packs = ma.fields.List(ma.fields.Nested(PackSchema))


# --- quotes and purchases ------------------------------------------------------
class AddOnSelectionSchema(StrictSchema):
    sku = ma.fields.String(required=True, validate=validate.Length(1, 32))
    seats = _int(required=True, validate=validate.Range(1, MAX_SEATS_ACCEPTED))


class SelectionSchema(StrictSchema):
    namespace_id = _int(required=True, validate=validate.Range(1, MAX_ID))
    plan = ma.fields.String(required=True, validate=validate.Length(1, 32))
    seats = _int(required=True, validate=validate.Range(1, MAX_SEATS_ACCEPTED))
    addons = ma.fields.List(ma.fields.Nested(AddOnSelectionSchema), load_default=list,
                            validate=validate.Length(max=10))
    discount_code = ma.fields.String(load_default=None, allow_none=True,
                                     validate=validate.Length(max=64))


class PurchaseRequestSchema(SelectionSchema):
    payment_method_id = _int(load_default=None, allow_none=True, validate=validate.Range(1, MAX_ID),
                             metadata={"description": "A saved card's id; default card if omitted"})


class LineSchema(ma.Schema):
    sku = ma.fields.String()
    kind = ma.fields.String()
    description = ma.fields.String()
    quantity = ma.fields.Integer()
    unit_amount = ma.fields.Integer()
    amount = ma.fields.Integer()
    discount = ma.fields.Integer()
    net = ma.fields.Integer()


class CodeResultSchema(ma.Schema):
    code = ma.fields.String()
    applied = ma.fields.Boolean()
    reason = ma.fields.String(allow_none=True, metadata={"description": "Stable rejection code"})
    message = ma.fields.String(allow_none=True)


class SmbPromptSchema(ma.Schema):
    code = ma.fields.String()
    headline = ma.fields.String()
    body = ma.fields.String()


class OfferSchema(ma.Schema):
    namespace_id = ma.fields.Integer()
    namespace_path = ma.fields.String()
    current_plan = ma.fields.String()
    billable_members = ma.fields.Integer()
    minimum_seats = ma.fields.Integer()
    minimum_reason = ma.fields.String(metadata={"description": "Why the minimum is what it is"})
    default_seats = ma.fields.Integer(
        metadata={"description": "Seats to start with (the default-seats experiment)"})
    smb_prompt = ma.fields.Nested(SmbPromptSchema, allow_none=True, metadata={
        "description": "Set when the smb-discount-prompt experiment shows the buyer its prompt"})


class QuoteSchema(ma.Schema):
    namespace_id = ma.fields.Integer()
    plan = ma.fields.String()
    seats = ma.fields.Integer()
    minimum_seats = ma.fields.Integer()
    billable_members = ma.fields.Integer()
    currency = ma.fields.String()
    catalog_version = ma.fields.String()
    term_start = ma.fields.String()
    term_end = ma.fields.String()
    lines = ma.fields.List(ma.fields.Nested(LineSchema))
    subtotal = ma.fields.Integer()
    discount_total = ma.fields.Integer()
    total = ma.fields.Integer()
    discount_code = ma.fields.String(allow_none=True)
    upgrades_subscription_id = ma.fields.Integer(
        allow_none=True, metadata={"description": "Set when this prices an upgrade of a subscription"})
    code_result = ma.fields.Nested(CodeResultSchema, allow_none=True)
    smb_prompt = ma.fields.Nested(SmbPromptSchema, allow_none=True)


class OrderSchema(ma.Schema):
    id = ma.fields.Integer()
    namespace_id = ma.fields.Integer()
    status = ma.fields.String()
    plan = ma.fields.String()
    seats = ma.fields.Integer()
    currency = ma.fields.String()
    lines = ma.fields.List(ma.fields.Nested(LineSchema))
    subtotal = ma.fields.Integer()
    discount_total = ma.fields.Integer()
    total = ma.fields.Integer()
    discount_code = ma.fields.String(allow_none=True)
    term_start = ma.fields.String()
    term_end = ma.fields.String()
    upgrades_subscription_id = ma.fields.Integer(allow_none=True)
    payment_intent_id = ma.fields.String(allow_none=True, metadata={
        "description": "Set from the first charge attempt on, declined ones included"})
    amount_charged = ma.fields.Integer(metadata={"description": "Cents the card was charged"})
    failure_code = ma.fields.String(allow_none=True, metadata={
        "description": "Why the order failed: the card's decline code, or why it was refunded"})
    failure_message = ma.fields.String(allow_none=True)
    refunded = ma.fields.Boolean()
    refunded_amount = ma.fields.Integer(metadata={"description": "Cents given back"})
    subscription_id = ma.fields.Integer(allow_none=True, metadata={
        "description": "The subscription this order created, upgraded or expanded"})
    kind = ma.fields.String(metadata={"description": "purchase, upgrade or expansion"})
    heading = ma.fields.String(allow_none=True, metadata={
        "description": "What an expansion buys, in words: \"Add 3 seats to globex's Premium\""})
    created_at = ma.fields.String()
    completed_at = ma.fields.String(allow_none=True)


class SubscriptionAddOnSchema(ma.Schema):
    sku = ma.fields.String()
    seats = ma.fields.Integer()


class SubscriptionSchema(ma.Schema):
    id = ma.fields.Integer()
    namespace_id = ma.fields.Integer()
    plan = ma.fields.String()
    seats = ma.fields.Integer()
    status = ma.fields.String()
    auto_renew = ma.fields.Boolean()
    term_start = ma.fields.String()
    term_end = ma.fields.String()
    next_renewal_date = ma.fields.String(allow_none=True)
    addons = ma.fields.List(ma.fields.Nested(SubscriptionAddOnSchema))


class PaidBySchema(ma.Schema):
    id = ma.fields.Integer()
    kind = ma.fields.String(metadata={"description": "purchase, upgrade or expansion"})
    plan = ma.fields.String()
    seats = ma.fields.Integer()
    total = ma.fields.Integer()
    amount_charged = ma.fields.Integer()
    refunded_amount = ma.fields.Integer()
    completed_at = ma.fields.String(allow_none=True)


class SubscriptionWithOrdersSchema(SubscriptionSchema):
    orders = ma.fields.List(ma.fields.Nested(PaidBySchema), metadata={
        "description": "The orders that paid for this subscription, oldest first"})


class PurchaseResultSchema(ma.Schema):
    status = ma.fields.String(metadata={"description": "completed or requires_action"})
    order = ma.fields.Nested(OrderSchema)
    subscription = ma.fields.Nested(SubscriptionSchema, allow_none=True)
    client_secret = ma.fields.String(allow_none=True,
                                     metadata={"description": "For Stripe.js confirmCardPayment"})
    next_step = ma.fields.String()


EXPANSION_KINDS = ("seats", "addon", "compute_minutes", "storage")
ADDON_SKUS = ("duo_pro", "duo_enterprise")


class ExpansionSchema(StrictSchema):
    """Seats, a Duo add-on (or seats on it), or packs for what a namespace has."""

    namespace_id = _int(required=True, validate=validate.Range(1, MAX_ID))
    kind = ma.fields.String(required=True, validate=validate.OneOf(EXPANSION_KINDS))
    quantity = _int(required=True, validate=validate.Range(1, MAX_SEATS_ACCEPTED), metadata={
        "description": "Seats to add; packs of 1,000 compute minutes or 10 GiB (the catalog's "
                       "max_seats and packs' max_quantity are the limits sold)"})
    sku = ma.fields.String(load_default=None, allow_none=True, validate=validate.OneOf(ADDON_SKUS),
                           metadata={"description": "The add-on, required for kind addon only "
                                                    "(else 422 validation_failed, after authentication)"})
    discount_code = ma.fields.String(load_default=None, allow_none=True,
                                     validate=validate.Length(max=64))


class ExpansionRequestSchema(ExpansionSchema):
    payment_method_id = _int(load_default=None, allow_none=True, validate=validate.Range(1, MAX_ID),
                             metadata={"description": "A saved card's id; default card if omitted"})


class ExpansionAfterSchema(ma.Schema):
    plan = ma.fields.String()
    seats = ma.fields.Integer()
    addons = ma.fields.List(ma.fields.Nested(SubscriptionAddOnSchema))
    compute_minutes = ma.fields.Integer()
    storage_gib = ma.fields.Integer()


class ExpansionQuoteSchema(ma.Schema):
    namespace_id = ma.fields.Integer()
    kind = ma.fields.String()
    sku = ma.fields.String(allow_none=True)
    quantity = ma.fields.Integer()
    heading = ma.fields.String(metadata={"description": "What is being bought, in words"})
    currency = ma.fields.String()
    catalog_version = ma.fields.String()
    subscription_id = ma.fields.Integer(allow_none=True)
    term_start = ma.fields.String(metadata={"description": "Today"})
    term_end = ma.fields.String(allow_none=True, metadata={
        "description": "The subscription's term end (co-terminous); a year from today for storage "
                       "without one; null for compute minutes (they never end)"})
    days_left = ma.fields.Integer(allow_none=True, metadata={"description": "Days paid for, pro rata"})
    term_days = ma.fields.Integer(allow_none=True)
    lines = ma.fields.List(ma.fields.Nested(LineSchema))
    subtotal = ma.fields.Integer()
    discount_total = ma.fields.Integer()
    total = ma.fields.Integer()
    discount_code = ma.fields.String(allow_none=True)
    code_result = ma.fields.Nested(CodeResultSchema, allow_none=True)
    after = ma.fields.Nested(ExpansionAfterSchema,
                             metadata={"description": "What the namespace has once bought"})


class EntitlementAddOnSchema(SubscriptionAddOnSchema):
    trial = ma.fields.Boolean(metadata={"description": "Granted by an active trial"})
    seat_holders = ma.fields.List(ma.fields.Integer(), metadata={
        "description": "Users holding a seat: an add-on trial's, kept when the add-on is bought"})


class ActiveTrialSchema(ma.Schema):
    kind = ma.fields.String()
    ends_at = ma.fields.AwareDateTime()
    seats = ma.fields.Integer(allow_none=True)


class ComputeMinutesSchema(ma.Schema):
    purchased = ma.fields.Integer(metadata={"description": "Minutes bought in packs (never expire)"})
    balance = ma.fields.Integer(metadata={"description": "Bought and not used (usage is not tracked "
                                                        "here: equal to purchased)"})


class StorageSchema(ma.Schema):
    purchased_gib = ma.fields.Integer(metadata={"description": "GiB of storage packs held now"})
    expires_on = ma.fields.String(allow_none=True, metadata={
        "description": "When the storage held first runs out (the subscription's term end: it renews)"})


class EntitlementsSchema(ma.Schema):
    namespace_id = ma.fields.Integer()
    path = ma.fields.String()
    plan = ma.fields.String(metadata={"description": "Effective plan: the paid plan, or a trial's"})
    paid_plan = ma.fields.String(allow_none=True)
    seats = ma.fields.Integer(allow_none=True)
    billable_members = ma.fields.Integer()
    addons = ma.fields.List(ma.fields.Nested(EntitlementAddOnSchema))
    trials = ma.fields.List(ma.fields.Nested(ActiveTrialSchema))
    features = ma.fields.List(ma.fields.String())
    compute_minutes = ma.fields.Nested(ComputeMinutesSchema)
    storage = ma.fields.Nested(StorageSchema)


class NamespaceSchema(ma.Schema):
    id = ma.fields.Integer()
    path = ma.fields.String()
    name = ma.fields.String()
    kind = ma.fields.String()
    parent_id = ma.fields.Integer(allow_none=True)
    plan = ma.fields.String(metadata={"description": "The paid plan"})
    role = ma.fields.String(allow_none=True, metadata={"description": "The caller's role"})
    billable_members = ma.fields.Integer()
    addons_purchased = ma.fields.List(ma.fields.String(),
                                      metadata={"description": "Add-ons ever bought for it"})


# --- billing -------------------------------------------------------------------
def _text(max_len: int, required: bool = True) -> ma.fields.String:
    if required:
        return ma.fields.String(required=True, validate=[validate.Length(1, max_len), printable()])
    return ma.fields.String(load_default=None, allow_none=True,
                            validate=[validate.Length(max=max_len), printable()])


class BillingAccountInSchema(StrictSchema):
    company = _text(200)
    email = ma.fields.Email(required=True, validate=validate.Length(max=254))
    country = ma.fields.String(required=True, validate=Pattern(
        r"^[A-Za-z]{2}$", error="Use a two-letter ISO 3166 country code."))
    address_line1 = _text(200)
    address_line2 = _text(200, required=False)
    city = _text(100)
    state = _text(100, required=False)
    postal_code = _text(20)


class CardSchema(ma.Schema):
    id = ma.fields.Integer()
    brand = ma.fields.String()
    last4 = ma.fields.String()
    exp_month = ma.fields.Integer()
    exp_year = ma.fields.Integer()
    is_default = ma.fields.Boolean()


class BillingAccountSchema(BillingAccountInSchema):
    class Meta:
        unknown = ma.EXCLUDE

    id = ma.fields.Integer()
    has_stripe_customer = ma.fields.Boolean()
    cards = ma.fields.List(ma.fields.Nested(CardSchema))


class CardSetupSchema(ma.Schema):
    setup_intent_id = ma.fields.String()
    client_secret = ma.fields.String()
    publishable_key = ma.fields.String()
    stripe_js_url = ma.fields.String()


class RecordCardSchema(StrictSchema):
    setup_intent_id = ma.fields.String(required=True, validate=Pattern(
        r"^seti_[A-Za-z0-9]{1,64}$", error="Not a SetupIntent id."))
    make_default = ma.fields.Boolean(load_default=None, metadata={
        "description": "Make it the card renewals charge. Left out: only if there is no valid default card."})


# --- discount campaigns (admin) ------------------------------------------------
class CampaignInSchema(StrictSchema):
    name = _text(200)
    kind = ma.fields.String(required=True, validate=validate.OneOf(["shared", "bulk"]))
    code = ma.fields.String(load_default=None, validate=validate.Length(max=64),
                            metadata={"description": "The shared code (kind=shared)"})
    code_count = _int(load_default=None, validate=validate.Range(1, 10_000),
                      metadata={"description": "How many single-use codes (kind=bulk)"})
    code_prefix = ma.fields.String(load_default="", validate=Pattern(
        r"^[A-Za-z0-9]{0,8}$", error="Up to 8 letters or digits."))
    discount_type = ma.fields.String(required=True,
                                     validate=validate.OneOf(["percent", "amount", "unit_price"]))
    value = _int(required=True, validate=validate.Range(1, 100_000_000), metadata={
        "description": "percent: whole percent; amount: cents off; unit_price: cents per seat per month"})
    applies_to = ma.fields.List(ma.fields.String(validate=validate.Length(1, 32)), required=True,
                                validate=validate.Length(1, 10))
    first_term_only = ma.fields.Boolean(load_default=True)
    valid_from = ma.fields.AwareDateTime(load_default=None, allow_none=True)
    valid_until = ma.fields.AwareDateTime(load_default=None, allow_none=True)
    max_redemptions = _int(load_default=None, allow_none=True, validate=validate.Range(1))
    once_per_namespace = ma.fields.Boolean(load_default=True)
    once_per_billing_account = ma.fields.Boolean(load_default=False)
    new_customers_only = ma.fields.Boolean(load_default=False)
    min_seats = _int(load_default=None, allow_none=True, validate=validate.Range(1))
    max_seats = _int(load_default=None, allow_none=True, validate=validate.Range(1))
    min_amount = _int(load_default=None, allow_none=True, validate=validate.Range(0))
    card_only = ma.fields.Boolean(load_default=False)


class RevenueSchema(ma.Schema):
    list_price = ma.fields.Integer(metadata={"description": "What the discounted orders would have cost"})
    discount_given = ma.fields.Integer()
    collected = ma.fields.Integer()


class CampaignSchema(CampaignInSchema):
    class Meta:
        unknown = ma.EXCLUDE

    id = ma.fields.Integer()
    status = ma.fields.String()
    codes = ma.fields.Integer(metadata={"description": "Number of codes"})
    description = ma.fields.String()
    redemptions = ma.fields.Integer()
    rejections = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer(), metadata={
        "description": "Refused attempts at the campaign's codes, by exact reason (buyers see "
                       "unknown, paused and ended codes as one reason: code_unknown)"})
    remaining_uses = ma.fields.Integer(allow_none=True)
    revenue = ma.fields.Nested(RevenueSchema)
    created_at = ma.fields.AwareDateTime()
    updated_at = ma.fields.AwareDateTime()


class RedemptionSchema(ma.Schema):
    order_id = ma.fields.Integer()
    code = ma.fields.String()
    namespace_id = ma.fields.Integer()
    billing_account_id = ma.fields.Integer()
    discount_amount = ma.fields.Integer()
    order_total = ma.fields.Integer()
    redeemed_at = ma.fields.AwareDateTime()



# --- renewals ------------------------------------------------------------------
class RenewalQuoteSchema(ma.Schema):
    renewal_date = ma.fields.String()
    new_term_end = ma.fields.String()
    plan = ma.fields.String()
    seats = ma.fields.Integer(metadata={"description": "Raised to the billable members if higher"})
    seats_owed = ma.fields.Integer()
    total = ma.fields.Integer(metadata={"description": "Cents, at list price"})
    currency = ma.fields.String()
    lines = ma.fields.List(ma.fields.Nested(LineSchema))
    scheduled_change = ma.fields.List(ma.fields.String(), metadata={
        "description": "The change scheduled for this renewal, in words (empty: none)"})


class CardStatusSchema(CardSchema):
    """Owners (and admins) see the card; other members only whether it will do."""
    expired = ma.fields.Boolean()
    expires_before_renewal = ma.fields.Boolean()


class RenewalPreviewSchema(ma.Schema):
    subscription = ma.fields.Nested(SubscriptionSchema)
    quote = ma.fields.Nested(RenewalQuoteSchema)
    reminders = ma.fields.List(ma.fields.String(), metadata={"description": "Dates reminders go out"})
    manual_renewal_from = ma.fields.String()
    grace_ends = ma.fields.String()
    card = ma.fields.Nested(CardStatusSchema, allow_none=True)


class RenewalResultSchema(ma.Schema):
    renewal_date = ma.fields.String()
    amount = ma.fields.Integer()
    changes = ma.fields.List(ma.fields.String())
    subscription = ma.fields.Nested(SubscriptionSchema)


# --- the platform's directory (system hooks) ----------------------------------------
def _name(**kwargs: object) -> ma.fields.String:
    return ma.fields.String(validate=[validate.Length(1, 255), printable()], **kwargs)  # type: ignore[arg-type]


def _id(**kwargs: object) -> ma.fields.Integer:
    return _int(validate=validate.Range(1, MAX_ID), **kwargs)


class _SystemHookSchema(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE  # the platform sends more than checkout keeps

    event_name = ma.fields.String(required=True)
    created_at = ma.fields.AwareDateTime(required=True)
    updated_at = ma.fields.AwareDateTime(load_default=None, metadata={
        "description": "When the change happened (default: created_at); older changes are ignored"})


class GroupHookSchema(_SystemHookSchema):
    """group_create, group_destroy."""

    group_id = _id(required=True)
    name = _name(required=True)
    path = _name(required=True)
    full_path = _name(load_default=None, metadata={"description": "A subgroup's path with its parents'"})
    parent_id = _id(load_default=None, allow_none=True, metadata={"description": "A subgroup's parent"})


class GroupRenameHookSchema(GroupHookSchema):
    old_path = _name(load_default=None)
    old_full_path = _name(load_default=None)


class MemberHookSchema(_SystemHookSchema):
    """user_add_to_group, user_update_for_group, user_remove_from_group."""

    group_id = _id(required=True)
    group_name = _name(load_default=None)
    group_path = _name(load_default=None)
    user_id = _id(required=True)
    user_username = _name(load_default=None)
    user_name = _name(required=True)
    user_email = ma.fields.Email(required=True, validate=validate.Length(max=254))
    group_access = ma.fields.String(required=True, validate=validate.OneOf(list(ROLES)))


SYSTEM_HOOK_SCHEMAS: dict[str, type[ma.Schema]] = {
    GROUP_CREATE: GroupHookSchema, GROUP_DESTROY: GroupHookSchema, GROUP_RENAME: GroupRenameHookSchema,
    **{event: MemberHookSchema for event in MEMBER_EVENTS},
}


class SystemHookSchema(ma.Schema):
    """One of the platform's system hooks, checked against its event's schema
    (GroupHookSchema, GroupRenameHookSchema, MemberHookSchema). Other events
    (the platform sends every kind to one address) pass unchecked and are ignored."""

    class Meta:
        unknown = ma.INCLUDE

    event_name = ma.fields.String(required=True, validate=validate.Length(1, 64))

    @ma.post_load(pass_original=True)
    def _by_event(self, data: dict[str, Any], original: dict[str, Any], **_: Any) -> dict[str, Any]:
        schema = SYSTEM_HOOK_SCHEMAS.get(data["event_name"])
        return schema().load(original) if schema else {"event_name": data["event_name"]}


class StripeEventReceivedSchema(ma.Schema):
    received = ma.fields.Boolean(metadata={"description": "Always true: the event is stored once"})
    outcome = ma.fields.String(metadata={
        "description": "What checkout did with it: 'order 7: pending -> completed', "
                       "'ignored: no order', 'duplicate', ..."})


class HookReceivedSchema(ma.Schema):
    event_id = ma.fields.String(metadata={
        "description": "X-Gitlab-Event-UUID, or one made from the body when none was sent"})
    outcome = ma.fields.String(metadata={
        "description": "What checkout did: 'created: ...', 'added: ...', 'unchanged: ...', 'stale: ...' "
                       "(older than the last change applied), 'ignored: ...', or 'duplicate'"})
    events = ma.fields.List(ma.fields.String(), metadata={"description": "The directory.* events published"})


# --- seats --------------------------------------------------------------------
class DuoSeatsSchema(ma.Schema):
    sku = ma.fields.String()
    purchased = ma.fields.Integer()
    trial = ma.fields.Integer(metadata={"description": "Seats an active trial grants"})
    assigned = ma.fields.Integer()


class SeatUtilizationSchema(ma.Schema):
    namespace_id = ma.fields.Integer()
    namespace_path = ma.fields.String()
    plan = ma.fields.String()
    seats_bought = ma.fields.Integer()
    seats_in_use = ma.fields.Integer(metadata={"description": "Billable members now"})
    max_seats_used = ma.fields.Integer(metadata={"description": "The most in use this term"})
    seats_owed = ma.fields.Integer(metadata={"description": "max(0, max_seats_used - seats_bought)"})
    term_start = ma.fields.String(allow_none=True)
    term_end = ma.fields.String(allow_none=True)
    block_overages = ma.fields.Boolean()
    reconciliation_excluded = ma.fields.Boolean()
    duo = ma.fields.List(ma.fields.Nested(DuoSeatsSchema))


class SeatHolderSchema(ma.Schema):
    user_id = ma.fields.Integer()
    name = ma.fields.String()
    email = ma.fields.String()
    role = ma.fields.String()
    seat_taken_at = ma.fields.String()


class SeatHoldingSchema(ma.Schema):
    user_id = ma.fields.Integer()
    role = ma.fields.String()
    seat_taken_at = ma.fields.String()
    left_at = ma.fields.String(allow_none=True)


class UsagePointSchema(ma.Schema):
    at = ma.fields.String()
    seats_in_use = ma.fields.Integer()


class SeatUsageSchema(ma.Schema):
    namespace_id = ma.fields.Integer()
    term_start = ma.fields.String()
    seats_bought = ma.fields.Integer()
    max_seats_used = ma.fields.Integer()
    points = ma.fields.List(ma.fields.Nested(UsagePointSchema),
                            metadata={"description": "Seats in use from each moment on (a step function)"})


_USER_IDS = ma.fields.List(_int(validate=validate.Range(min=1, max=MAX_ID)), required=True,
                           validate=validate.Length(min=1, max=100))


class SeatPreviewInSchema(StrictSchema):
    user_ids = _USER_IDS
    role = ma.fields.String(required=True, validate=validate.OneOf(list(ROLES.values())))


class SeatPreviewSchema(ma.Schema):
    namespace_id = ma.fields.Integer()
    role = ma.fields.String()
    takes_seat = ma.fields.Boolean(metadata={"description": "Whether this role takes a seat on this plan"})
    new_seats = ma.fields.Integer(metadata={"description": "Users who would take a seat they do not hold"})
    seats_bought = ma.fields.Integer()
    seats_in_use = ma.fields.Integer()
    seats_in_use_after = ma.fields.Integer()
    will_increase_overage = ma.fields.Boolean()
    additional_seats_owed = ma.fields.Integer()
    seats_owed_before = ma.fields.Integer(metadata={"description": "This quarter's, as things are"})
    seats_owed_after = ma.fields.Integer()
    amount = ma.fields.Integer(metadata={"description": "What the next reconciliation would charge (cents)"})
    additional_amount = ma.fields.Integer(metadata={"description": "How much of it the add causes"})
    currency = ma.fields.String()
    reconciliation_date = ma.fields.String(allow_none=True)


class SeatSettingsInSchema(StrictSchema):
    block_overages = ma.fields.Boolean(required=True)


class ExclusionInSchema(StrictSchema):
    excluded = ma.fields.Boolean(required=True)
    reason = ma.fields.String(required=True, validate=[validate.Length(min=3, max=500), printable()])


class SeatSettingsSchema(ma.Schema):
    namespace_id = ma.fields.Integer()
    block_overages = ma.fields.Boolean()
    reconciliation_excluded = ma.fields.Boolean()


class SeatSettingChangeSchema(ma.Schema):
    setting = ma.fields.String()
    value = ma.fields.Boolean()
    reason = ma.fields.String(allow_none=True)
    changed_by = ma.fields.Integer()
    changed_at = ma.fields.String()


class SeatReconciliationSchema(ma.Schema):
    id = ma.fields.Integer()
    subscription_id = ma.fields.Integer()
    term_start = ma.fields.String()
    quarter = ma.fields.Integer()
    status = ma.fields.String(metadata={
        "description": "due, clear, excluded, noticed, charged, covered (seats bought meanwhile), "
                       "superseded (renewed first), retrying or failed"})
    max_seats_used = ma.fields.Integer(allow_none=True)
    seats_before = ma.fields.Integer(allow_none=True)
    overage_seats = ma.fields.Integer(allow_none=True)
    amount = ma.fields.Integer(allow_none=True)
    currency = ma.fields.String(allow_none=True)
    charge_on = ma.fields.String(allow_none=True)
    attempts = ma.fields.Integer()
    payment_intent_id = ma.fields.String(allow_none=True)


# --- Duo seats ----------------------------------------------------------------
class DuoMembersQuerySchema(StrictSchema):
    sort = ma.fields.String(load_default="name", validate=validate.OneOf(["name", "role", "assigned"]))
    order = ma.fields.String(load_default="asc", validate=validate.OneOf(["asc", "desc"]))
    role = ma.fields.String(validate=validate.OneOf(list(ROLES.values())))
    assigned = ma.fields.Boolean()
    search = ma.fields.String(validate=[validate.Length(max=100), printable()])


class DuoMemberSchema(ma.Schema):
    user_id = ma.fields.Integer()
    name = ma.fields.String()
    email = ma.fields.String()
    role = ma.fields.String()
    assigned = ma.fields.Boolean()


class DuoSeatSummarySchema(ma.Schema):
    namespace_id = ma.fields.Integer()
    sku = ma.fields.String()
    seats = ma.fields.Integer(metadata={"description": "Purchased plus granted by an active trial"})
    assigned = ma.fields.Integer()
    free = ma.fields.Integer()


class DuoMembersSchema(DuoSeatSummarySchema):
    namespace_path = ma.fields.String()
    members = ma.fields.List(ma.fields.Nested(DuoMemberSchema))


class DuoAssignInSchema(StrictSchema):
    user_ids = _USER_IDS


class DuoAssignedSchema(DuoSeatSummarySchema):
    changed = ma.fields.List(ma.fields.Integer(), metadata={"description": "Whose seat this request changed"})


class UserEntitlementsSchema(ma.Schema):
    namespace_id = ma.fields.Integer()
    user_id = ma.fields.Integer()
    member = ma.fields.Boolean()
    role = ma.fields.String(allow_none=True)
    billable = ma.fields.Boolean()
    duo = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Boolean(),
                         metadata={"description": "Per Duo add-on: whether the user holds a seat"})
