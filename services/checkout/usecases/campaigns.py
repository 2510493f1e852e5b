"""Admins run discount campaigns: create (one shared code or many single-use
codes), pause, resume, end, and see what they did to revenue."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from funnel.telemetry import Step
from identity.auth import Principal
from services.checkout.adapters.models import (
    DiscountCampaign,
    DiscountCode,
    DiscountRedemption,
    FunnelEventRow,
)
from services.checkout.domain import discounts as rules
from services.checkout.runtime import Checkout
from services.checkout.usecases.discounts import campaign_rules
from services.common.errors import Conflict, Forbidden, Invalid, not_found
from services.common.service import ServiceUnitOfWork

MAX_BULK_CODES = 10_000
TRANSITIONS = {"pause": ({"active"}, "paused"), "resume": ({"paused"}, "active"),
               "end": ({"active", "paused"}, "ended")}
RULE_FIELDS = ("discount_type", "value", "applies_to", "first_term_only", "valid_from", "valid_until",
               "max_redemptions", "once_per_namespace", "once_per_billing_account",
               "new_customers_only", "min_seats", "max_seats", "min_amount", "card_only")


@dataclass(frozen=True)
class NewCampaign:
    name: str
    kind: str  # shared or bulk
    fields: dict[str, Any]
    code: str | None = None
    code_count: int | None = None
    code_prefix: str = ""


def require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise Forbidden("admin_required", "Admin role required",
                        "Only admins manage discount campaigns.")


def create(app: Checkout, uow: ServiceUnitOfWork, principal: Principal, new: NewCampaign) -> dict[str, Any]:
    require_admin(principal)
    candidate = rules.CampaignRules(name=new.name, **{
        **new.fields, "discount_type": rules.DiscountType(new.fields["discount_type"]),
        "applies_to": tuple(new.fields["applies_to"])})
    known = set(app.catalog.plans) | set(app.catalog.addons) | set(app.catalog.packs)
    problem = rules.validate_rules(candidate, known)
    if problem:
        raise Invalid("invalid_campaign", "Invalid campaign", problem)
    if new.kind == "shared":
        code = rules.normalise_code(new.code or "")
        if not rules.is_well_formed(code):
            raise Invalid("code_malformed", "Malformed code",
                          "Codes have 3 to 64 letters A-Z, digits and dashes.")
        codes = [code]
    else:
        if not new.code_count or not 1 <= new.code_count <= MAX_BULK_CODES:
            raise Invalid("invalid_campaign", "Invalid campaign",
                          f"Bulk campaigns have between 1 and {MAX_BULK_CODES} codes.")
        codes = unique_codes(new.code_count, new.code_prefix.upper())
    with uow:
        campaign = DiscountCampaign(name=new.name, kind=new.kind, status="active",
                                    created_by=principal.user_id, created_at=uow.now,
                                    updated_at=uow.now, redeemed_count=0, **new.fields)
        uow.session.add(campaign)
        uow.session.flush()
        per_code = None if new.kind == "shared" else 1
        try:
            uow.session.execute(insert(DiscountCode), [
                {"campaign_id": campaign.id, "code": c, "max_redemptions": per_code,
                 "redeemed_count": 0} for c in codes])
        except IntegrityError as exc:
            raise Conflict("code_taken", "Code already exists",
                           "Another campaign already uses this code.") from exc
        uow.publish("discount_campaign.created", {"campaign_id": campaign.id, "name": campaign.name,
                                                   "kind": campaign.kind, "codes": len(codes)})
        uow.commit()
        return view(uow, campaign)


def unique_codes(count: int, prefix: str) -> list[str]:
    codes: set[str] = set()
    while len(codes) < count:
        codes.add(rules.generate_code(prefix))
    return sorted(codes)


def _load(uow: ServiceUnitOfWork, principal: Principal, campaign_id: int) -> DiscountCampaign:
    require_admin(principal)
    campaign = uow.session.get(DiscountCampaign, campaign_id)
    if campaign is None:
        raise not_found("campaign", campaign_id)
    return campaign


def view(uow: ServiceUnitOfWork, campaign: DiscountCampaign) -> dict[str, Any]:
    session = uow.session
    redemptions, discount, revenue = session.execute(
        select(func.count(DiscountRedemption.id),
               func.coalesce(func.sum(DiscountRedemption.discount_amount), 0),
               func.coalesce(func.sum(DiscountRedemption.order_total), 0))
        .where(DiscountRedemption.campaign_id == campaign.id)).one()
    codes, unused = session.execute(
        select(func.count(DiscountCode.id),
               func.count(DiscountCode.id).filter(DiscountCode.redeemed_count == 0))
        .where(DiscountCode.campaign_id == campaign.id)).one()
    cap = campaign.max_redemptions
    remaining = None if cap is None else cap - campaign.redeemed_count
    if campaign.kind == "bulk":
        remaining = unused if remaining is None else min(remaining, unused)
    shared_code = session.scalar(select(DiscountCode.code).where(DiscountCode.campaign_id == campaign.id)) \
        if campaign.kind == "shared" else None
    return {
        "id": campaign.id, "name": campaign.name, "kind": campaign.kind, "status": campaign.status,
        "rejections": _rejections(uow, campaign.id),
        "code": shared_code, "codes": codes,
        "description": rules.describe(campaign_rules(campaign)),
        **{f: getattr(campaign, f) for f in RULE_FIELDS},
        "redemptions": redemptions, "remaining_uses": remaining,
        "revenue": {"list_price": int(revenue) + int(discount), "discount_given": int(discount),
                    "collected": int(revenue)},
        "created_at": campaign.created_at, "updated_at": campaign.updated_at,
    }


def _rejections(uow: ServiceUnitOfWork, campaign_id: int) -> dict[str, int]:
    """Refused attempts at this campaign's codes by their exact reason: buyers
    are told less (a paused code reads as unknown), admins are told all."""
    reason = FunnelEventRow.properties["reason"].as_string()
    rows = uow.session.execute(
        select(reason, func.count()).where(
            FunnelEventRow.step == Step.CODE_REJECTED.value,
            FunnelEventRow.properties["campaign_id"].as_integer() == campaign_id)
        .group_by(reason)).all()
    return {str(r): int(n) for r, n in sorted(rows)}


def list_all(uow: ServiceUnitOfWork, principal: Principal) -> list[dict[str, Any]]:
    require_admin(principal)
    with uow:
        campaigns = uow.session.scalars(select(DiscountCampaign).order_by(DiscountCampaign.id)).all()
        return [view(uow, c) for c in campaigns]


def get(uow: ServiceUnitOfWork, principal: Principal, campaign_id: int) -> dict[str, Any]:
    with uow:
        return view(uow, _load(uow, principal, campaign_id))


def transition(uow: ServiceUnitOfWork, principal: Principal, campaign_id: int, action: str) -> dict[str, Any]:
    allowed_from, target = TRANSITIONS[action]
    with uow:
        campaign = _load(uow, principal, campaign_id)
        if campaign.status not in allowed_from:
            raise Conflict("invalid_transition", "Not possible in this state",
                           f"A {campaign.status} campaign can not be {target}.")
        campaign.status = target
        campaign.updated_at = uow.now
        uow.publish(f"discount_campaign.{target}", {"campaign_id": campaign.id, "by": principal.user_id})
        uow.commit()
        return view(uow, campaign)


def codes_csv(uow: ServiceUnitOfWork, principal: Principal, campaign_id: int) -> str:
    with uow:
        campaign = _load(uow, principal, campaign_id)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["code", "campaign", "max_redemptions", "redeemed", "status"])
        for c in uow.session.scalars(select(DiscountCode).where(DiscountCode.campaign_id == campaign.id)
                                     .order_by(DiscountCode.code)):
            used_up = c.max_redemptions is not None and c.redeemed_count >= c.max_redemptions
            writer.writerow([c.code, campaign.name, c.max_redemptions or "", c.redeemed_count,
                             "redeemed" if used_up else campaign.status])
        return out.getvalue()


def redemptions(uow: ServiceUnitOfWork, principal: Principal, campaign_id: int) -> list[dict[str, Any]]:
    with uow:
        campaign = _load(uow, principal, campaign_id)
        rows = uow.session.execute(
            select(DiscountRedemption, DiscountCode.code).join(DiscountCode)
            .where(DiscountRedemption.campaign_id == campaign.id).order_by(DiscountRedemption.id)).all()
        return [{"order_id": r.order_id, "code": code, "namespace_id": r.namespace_id,
                 "billing_account_id": r.billing_account_id, "discount_amount": r.discount_amount,
                 "order_total": r.order_total, "redeemed_at": r.created_at} for r, code in rows]
