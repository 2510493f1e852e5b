"""The checkout page's opening offer for a namespace, shaped by experiments, and
everything else the page opens with.

Flag attributes are the same names in every service (flags/payload.py):
`id` (user) and `namespace_id` hash; the rest is for targeting.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import BigInteger, bindparam, select
from sqlalchemy.orm import Session

from services.checkout.adapters.models import BillingAccount, Namespace
from services.checkout.domain.catalog import Plan
from services.checkout.domain.offers import OfferRules, SmbPrompt, default_seats, seat_minimum
from services.checkout.domain.pricing import (
    NamespaceFacts,
    Quote,
    Selection,
    assemble_quote,
    require_top_level,
)
from services.checkout.runtime import Checkout
from services.checkout.usecases import access
from services.checkout.usecases.billing import ACCOUNT_FIELDS, find_account
from services.checkout.usecases.discounts import paid_or_subscribed
from services.common.auth import Principal
from services.common.service import ServiceUnitOfWork
from services.common.telemetry import Step

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
    quote: Quote | None  # the first plan's price for the offered seats; None if nothing to buy
    account: dict[str, str]  # the billing account to prefill (empty before the first purchase)


def open_checkout(app: Checkout, uow: ServiceUnitOfWork, principal: Principal,
                  namespace_id: int) -> CheckoutPage:
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
        quote = assemble_quote(app.catalog, Selection(plans[0].id, offer.default_seats), facts,
                               uow.now.date()) if plans else None
        account = find_account(uow.session, principal.user_id)
        fields = {name: getattr(account, name) or "" for name in ACCOUNT_FIELDS} if account else {}
        _track_viewed(app, uow, principal, offer)
        uow.commit()
        return CheckoutPage(offer, plans, quote, fields)
