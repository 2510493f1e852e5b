"""The checkout page's opening offer for a namespace, shaped by experiments, and
everything else the page opens with.

Flag attributes are the same names in every service (flags/payload.py):
`id` (user) and `namespace_id` hash; the rest is for targeting.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import BigInteger, and_, bindparam, select
from sqlalchemy.orm import Session, aliased, selectinload

from funnel.telemetry import Step
from identity.auth import Principal
from services.checkout.adapters.models import (
    BillingAccount,
    Membership,
    Namespace,
    PaymentMethod,
    Subscription,
)
from services.checkout.domain.catalog import Catalog, Plan
from services.checkout.domain.expansions import Expansion, Kind
from services.checkout.domain.offers import OfferRules, SmbPrompt, default_seats, seat_minimum
from services.checkout.domain.pricing import (
    NamespaceFacts,
    Quote,
    Selection,
    assemble_quote,
    require_top_level,
)
from services.checkout.domain.renewal import card_flags
from services.checkout.domain.subscriptions import SubscriptionStatus
from services.checkout.runtime import Checkout, UowFactory
from services.checkout.usecases import access, expansions
from services.checkout.usecases.billing import ACCOUNT_FIELDS
from services.checkout.usecases.discounts import paid_or_subscribed
from services.checkout.usecases.views import card_view
from services.common.service import ServiceUnitOfWork

DEFAULT_SEATS_FLAG = "checkout-default-seats"
SMB_PROMPT_FLAG = "smb-discount-prompt"


@dataclass(frozen=True)
class Offer:
    namespace_id: int
    namespace_path: str
    current_plan: str
    billable_members: int
    minimum_seats: int
    minimum_reason: str
    default_seats: int
    smb_prompt: SmbPrompt | None

    def view(self) -> dict[str, Any]:
        return asdict(self)


def attributes(session: Session, principal: Principal, facts: NamespaceFacts) -> dict[str, Any]:
    country, returning = session.execute(_BUYER, {"user": principal.user_id, "ns": facts.id}).one()
    return _attributes(principal, facts, country, returning)


def _attributes(principal: Principal, facts: NamespaceFacts, country: str | None, returning: bool
                ) -> dict[str, Any]:
    return {
        "id": str(principal.user_id), "namespace_id": str(facts.id), "plan": facts.current_plan,
        "seats": facts.current.seats if facts.current else 0, "billable_members": facts.billable_members,
        "country": country, "new_customer": not returning,
    }


# The buyer's country and discounts.is_new_customer's test in one round trip (every
# quote asks), built once. Without a billing account the row is (NULL, <the namespace's
# history alone>), as is_new_customer(session, None, namespace) answers.
_ME = select(bindparam("user", type_=BigInteger).label("user_id")).subquery("me")
_BUYER = (
    select(BillingAccount.country, paid_or_subscribed(BillingAccount.id, bindparam("ns")))
    .select_from(_ME.outerjoin(BillingAccount, BillingAccount.user_id == _ME.c.user_id)))


def for_quote(session: Session, principal: Principal, namespace_id: int
              ) -> tuple[NamespaceFacts, dict[str, Any]]:
    """What a quote needs, in one round trip: the namespace if the caller may see
    it (access.load_namespace's rule), its facts and the buyer's flag attributes.
    Every quote asks, so it is one statement rather than three."""
    row = session.execute(_QUOTE_CONTEXT, {"ns": namespace_id, "user": principal.user_id}).first()
    namespace, membership, billable, sub, country, returning = row or (None, None, 0, None, None, False)
    facts = access.facts_of(access.visible(namespace, membership, principal, namespace_id), billable, sub)
    return facts, _attributes(principal, facts, country, returning)


# for_quote's statement: access's namespace-and-membership and facts, and _BUYER, joined.
# The active subscription under its own name: paid_or_subscribed's subqueries read
# `subscriptions` themselves and must not be correlated to it.
_ACTIVE = aliased(Subscription, name="active_subscription")
_QUOTE_CONTEXT = (
    select(Namespace, Membership, access.billable_count(Namespace.id).scalar_subquery(), _ACTIVE,
           BillingAccount.country, paid_or_subscribed(BillingAccount.id, Namespace.id))
    .select_from(Namespace)
    .outerjoin(Membership, and_(Membership.namespace_id == Namespace.id,
                                Membership.user_id == bindparam("user")))
    .outerjoin(_ACTIVE, and_(_ACTIVE.namespace_id == Namespace.id,
                             _ACTIVE.status == SubscriptionStatus.ACTIVE))
    .outerjoin(BillingAccount, BillingAccount.user_id == bindparam("user"))
    .where(Namespace.id == bindparam("ns"))
    .options(selectinload(_ACTIVE.addons)))


def smb_prompt(uow: ServiceUnitOfWork, rules: OfferRules, attrs: dict[str, Any]) -> SmbPrompt | None:
    return rules.smb_prompt if uow.flag(SMB_PROMPT_FLAG, attrs) is True else None


def _offer(app: Checkout, uow: ServiceUnitOfWork, principal: Principal, namespace: Namespace,
           facts: NamespaceFacts) -> Offer:
    attrs = attributes(uow.session, principal, facts)
    minimum, reason = seat_minimum(namespace.path, facts.billable_members,
                                   facts.current.seats if facts.current else 0)
    return Offer(
        namespace_id=namespace.id, namespace_path=namespace.path, current_plan=facts.current_plan,
        billable_members=facts.billable_members, minimum_seats=minimum, minimum_reason=reason,
        default_seats=max(minimum, default_seats(app.offers, facts.billable_members,
                                                 uow.flag(DEFAULT_SEATS_FLAG, attrs))),
        smb_prompt=smb_prompt(uow, app.offers, attrs))


def _track_viewed(app: Checkout, uow: ServiceUnitOfWork, principal: Principal, offer: Offer) -> None:
    uow.track(Step.PLANS_VIEWED, user_id=principal.user_id, namespace_id=offer.namespace_id,
              catalog_version=app.catalog.version, default_seats=offer.default_seats,
              smb_prompt=offer.smb_prompt is not None)


def checkout_offer(app: Checkout, uow: ServiceUnitOfWork, principal: Principal, namespace_id: int) -> Offer:
    """What the checkout page opens with; records that the page was seen."""
    with uow:
        uow.telemetry_only()
        namespace = access.load_namespace(uow.session, namespace_id, principal)
        offer = _offer(app, uow, principal, namespace, access.namespace_facts(uow.session, namespace))
        _track_viewed(app, uow, principal, offer)
        uow.commit()
        return offer


@dataclass(frozen=True)
class CheckoutPage:
    offer: Offer
    plans: list[Plan]  # what can be bought: the plans above the current one
    plan: str | None  # the plan chosen first: the one asked for, else the first; None if nothing to buy
    quote: Quote | None  # its price for the offered seats
    account: dict[str, str]  # the billing account to prefill (empty before the first purchase)
    saved_card: dict[str, Any] | None  # the card to offer instead of typing one (card_view)


def open_checkout(app: Checkout, uow: ServiceUnitOfWork, principal: Principal,
                  namespace_id: int, plan: str | None = None) -> CheckoutPage:
    """Everything the checkout page opens with, in one transaction. What can
    refuse (not an Owner, a subgroup, the price) is checked before anything is
    recorded: `plans_viewed` (and an experiment's exposure) only for a page shown."""
    with uow:
        uow.telemetry_only()
        namespace = access.load_namespace(uow.session, namespace_id, principal, owner=True)
        facts = access.namespace_facts(uow.session, namespace)
        require_top_level(facts)
        offer = _offer(app, uow, principal, namespace, facts)
        plans = app.catalog.plans_above(offer.current_plan)
        chosen = next((p.id for p in plans if p.id == plan), plans[0].id if plans else None)
        quote = assemble_quote(app.catalog, Selection(chosen, offer.default_seats), facts,
                               uow.now.date()) if chosen else None
        fields, card = buyer_account(uow, principal)
        _track_viewed(app, uow, principal, offer)
        uow.commit()
        return CheckoutPage(offer, plans, chosen, quote, fields, card)


def buyer_account(uow: ServiceUnitOfWork,
                  principal: Principal) -> tuple[dict[str, str], dict[str, Any] | None]:
    """The billing account's fields to prefill, and its default card unless it has
    expired: a returning buyer pays with it and is not asked to type a card again."""
    row = uow.session.execute(_ACCOUNT_AND_CARD, {"user": principal.user_id}).first()
    account, card = row or (None, None)
    if account is None:
        return {}, None
    fields = {name: getattr(account, name) or "" for name in ACCOUNT_FIELDS}
    today = uow.now.date()
    if card is None or card_flags(card.exp_month, card.exp_year, today, today)["expired"]:
        return fields, None
    return fields, card_view(card)


# The account and its default card in one round trip (every checkout page asks).
_ACCOUNT_AND_CARD = (
    select(BillingAccount, PaymentMethod)
    .outerjoin(PaymentMethod, and_(PaymentMethod.billing_account_id == BillingAccount.id,
                                   PaymentMethod.is_default.is_(True)))
    .where(BillingAccount.user_id == bindparam("user")))


@dataclass(frozen=True)
class ExpansionOption:
    """One thing the page can grow: seats of the plan, an add-on, or a pack."""

    kind: str  # an expansion kind: seats, addon, compute_minutes, storage
    sku: str | None  # the add-on, for kind "addon"
    name: str
    unit_amount: int  # per seat per term, or per pack


@dataclass(frozen=True)
class ExpansionPage:
    namespace_id: int
    namespace_path: str
    plan: str
    seats: int  # the subscription's (0 without one)
    addons: tuple[tuple[str, int], ...]  # the add-ons held and their seats
    options: list[ExpansionOption]
    chosen: ExpansionOption
    quantity: int  # offered first
    quote: dict[str, Any]  # the chosen option's price for that quantity
    account: dict[str, str]
    saved_card: dict[str, Any] | None


def expansion_options(catalog: Catalog, kinds: tuple[str, ...], plan: str) -> list[ExpansionOption]:
    """What a mode offers: the plan's seats, the add-ons the plan allows (all of them
    when it allows none: the quote then says why), or the packs."""
    options: list[ExpansionOption] = []
    for kind in kinds:
        if kind == Kind.SEATS:
            options.append(ExpansionOption(kind, None, catalog.plan_name(plan),
                                           catalog.plans[plan].unit_amount if plan in catalog.plans else 0))
        elif kind == Kind.ADDON:
            addons = ([a for a in catalog.addons.values() if plan in a.requires_plans]
                      or list(catalog.addons.values()))
            options += [ExpansionOption(kind, a.id, a.name, a.unit_amount) for a in addons]
        else:
            pack = catalog.packs[kind]
            options.append(ExpansionOption(kind, None, pack.name, pack.unit_amount))
    return options


def open_expansion(app: Checkout, new_uow: UowFactory, principal: Principal, namespace_id: int,
                   kinds: tuple[str, ...], sku: str | None) -> ExpansionPage:
    """Everything the checkout page opens with to grow a namespace: the choices, the
    quantity offered and its quote. A choice the rules refuse (no subscription to add
    to, a subgroup, an add-on the plan does not allow) refuses the page, in the
    quote's words; the quote records the funnel's steps."""
    with new_uow() as uow:
        namespace = access.load_namespace(uow.session, namespace_id, principal, owner=True)
        facts = access.namespace_facts(uow.session, namespace)
        account, card = buyer_account(uow, principal)
        path = namespace.path
    options = expansion_options(app.catalog, kinds, facts.current_plan)
    if sku is not None and Kind.ADDON in kinds:
        # Just the one asked for: one the plan does not allow, or no such add-on, is
        # refused by its quote below.
        options = [o for o in options if o.sku == sku] or [ExpansionOption(Kind.ADDON, sku, sku, 0)]
    chosen = options[0]
    seats = facts.current.seats if facts.current else 0
    held = dict(facts.current.addons) if facts.current else {}
    # A new add-on for everyone who has a seat; otherwise one more at a time.
    quantity = max(1, seats) if chosen.kind == Kind.ADDON and chosen.sku not in held else 1
    quote, _ = expansions.quote_expansion(app, new_uow(), principal, namespace_id,
                                          Expansion(Kind(chosen.kind), quantity, chosen.sku), None)
    return ExpansionPage(namespace_id, path, facts.current_plan, seats, tuple(sorted(held.items())), options,
                         chosen, quantity, expansions.quote_view(quote), account, card)
