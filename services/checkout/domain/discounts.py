"""Discount rules: everything is data on the campaign, and one pure function
decides whether a code applies to a priced selection and by how much.

A rejection carries a stable code and a human sentence; the rules are checked
in a fixed order (the code itself, then time, then supply, then the
selection, then the customer), so a prospect always hears the most useful
reason first.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from services.checkout.domain.pricing import AppliedDiscount, LineItem

CODE_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9-]{2,63}$")
# Readable, unambiguous: no 0/O, 1/I/L, no vowels-turned-words risk from U.
BULK_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"
BULK_GROUPS, BULK_GROUP_LENGTH = 3, 4  # XXXX-XXXX-XXXX: 30^12 ≈ 2^59 codes


class DiscountType(StrEnum):
    PERCENT = "percent"          # value: whole percent off (1-100)
    AMOUNT = "amount"            # value: cents off the eligible lines, per term
    UNIT_PRICE = "unit_price"    # value: cents per seat per month (the SMB offer: 1900)


class CampaignStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    ENDED = "ended"


@dataclass(frozen=True)
class CampaignRules:
    name: str
    discount_type: DiscountType
    value: int
    applies_to: tuple[str, ...]
    first_term_only: bool = True
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    max_redemptions: int | None = None
    once_per_namespace: bool = True
    once_per_billing_account: bool = False
    new_customers_only: bool = False
    min_seats: int | None = None
    max_seats: int | None = None
    min_amount: int | None = None
    card_only: bool = False


@dataclass(frozen=True)
class CodeState:
    """What the database says about a code right now."""

    code: str
    status: CampaignStatus
    campaign_redeemed: int
    code_max_redemptions: int | None
    code_redeemed: int
    rules: CampaignRules


@dataclass(frozen=True)
class Buyer:
    now: datetime
    plan: str
    seats: int
    is_new_customer: bool
    namespace_redeemed: bool
    account_redeemed: bool
    payment_method: str = "card"
    upgrade: bool = False


@dataclass(frozen=True)
class Rejection:
    reason: str
    message: str


# A code checker must not be an oracle: whether a code exists, or belongs to a
# paused or ended campaign, is an admin's business. These reasons answer the
# public as one; the exact reason stays in the funnel event and the admin report.
HIDDEN_REASONS = frozenset({"code_unknown", "campaign_paused", "campaign_ended"})
NOT_RECOGNISED = Rejection(
    "code_unknown", "This code isn't valid: it may be mistyped, or the offer may have ended.")


def public(rejection: Rejection) -> Rejection:
    """What a buyer is told of a rejection."""
    return NOT_RECOGNISED if rejection.reason in HIDDEN_REASONS else rejection


def normalise_code(raw: str) -> str:
    """Case-insensitive and trimmed; nothing else is forgiven."""
    return raw.strip().upper()


def is_well_formed(code: str) -> bool:
    return bool(CODE_PATTERN.fullmatch(code)) and code.isascii()


def generate_code(prefix: str = "") -> str:
    groups = ["".join(secrets.choice(BULK_ALPHABET) for _ in range(BULK_GROUP_LENGTH))
              for _ in range(BULK_GROUPS)]
    return "-".join(([prefix] if prefix else []) + groups)


def _exhausted(state: CodeState) -> bool:
    cap = state.rules.max_redemptions
    if cap is not None and state.campaign_redeemed >= cap:
        return True
    return state.code_max_redemptions is not None and state.code_redeemed >= state.code_max_redemptions


def check(state: CodeState | None, buyer: Buyer, lines: Sequence[LineItem]) -> Rejection | None:
    """The first rule the code breaks for this buyer and selection, or None."""
    if state is None:
        return Rejection("code_unknown", "This code does not exist. Check the spelling.")
    rules = state.rules
    if state.status is CampaignStatus.PAUSED:
        return Rejection("campaign_paused", "This offer is paused at the moment. Try again later.")
    if state.status is CampaignStatus.ENDED:
        return Rejection("campaign_ended", "This offer has ended.")
    if rules.valid_from and buyer.now < rules.valid_from:
        return Rejection("code_not_started",
                         f"This code can be used from {rules.valid_from:%B %-d, %Y} (UTC).")
    if rules.valid_until and buyer.now >= rules.valid_until:
        return Rejection("code_expired", f"This code expired on {rules.valid_until:%B %-d, %Y} (UTC).")
    if _exhausted(state):
        return Rejection("code_exhausted", "This code has been used as many times as it allows.")
    if buyer.upgrade:
        # Upgrade lines are pro-rated plan differences: a code's yearly terms do not apply to them.
        return Rejection("not_for_upgrades", "Discount codes apply to new subscriptions, not to upgrades.")
    eligible = [line for line in lines if line.sku in rules.applies_to]
    if not eligible:
        return Rejection("plan_not_eligible",
                         f"This code applies to {_names(rules.applies_to)} only.")
    if rules.max_seats is not None and buyer.seats > rules.max_seats:
        return Rejection("too_many_seats", f"This offer is for up to {rules.max_seats} seats.")
    if rules.min_seats is not None and buyer.seats < rules.min_seats:
        return Rejection("too_few_seats", f"This offer needs at least {rules.min_seats} seats.")
    if rules.new_customers_only and not buyer.is_new_customer:
        return Rejection("not_a_new_customer", "This offer is for new customers only.")
    if (rules.once_per_namespace and buyer.namespace_redeemed) or (
            rules.once_per_billing_account and buyer.account_redeemed):
        return Rejection("already_redeemed", "This offer has already been used for this "
                         + ("namespace." if buyer.namespace_redeemed else "billing account."))
    if rules.min_amount is not None and sum(line.amount for line in eligible) < rules.min_amount:
        return Rejection("below_minimum_amount",
                         f"This offer needs an order of at least ${rules.min_amount / 100:,.2f}.")
    if rules.card_only and buyer.payment_method != "card":
        return Rejection("card_payment_only", "This offer is for card payments only.")
    return None


def _names(skus: Sequence[str]) -> str:
    return " and ".join(sku.replace("_", " ").title() for sku in skus)


def discount_amounts(rules: CampaignRules, lines: Sequence[LineItem]) -> dict[str, int]:
    """Cents off per line sku (never more than the line)."""
    amounts: dict[str, int] = {}
    remaining = rules.value  # for AMOUNT: spread over eligible lines in order
    for line in lines:
        if line.sku not in rules.applies_to:
            continue
        if rules.discount_type is DiscountType.PERCENT:
            off = (line.amount * rules.value + 50) // 100
        elif rules.discount_type is DiscountType.UNIT_PRICE:
            off = max(0, line.unit_amount - rules.value * 12) * line.quantity
        else:
            off = min(remaining, line.amount)
            remaining -= off
        amounts[line.sku] = min(off, line.amount)
    return amounts


def describe(rules: CampaignRules) -> str:
    if rules.discount_type is DiscountType.PERCENT:
        what = f"{rules.value}% off"
    elif rules.discount_type is DiscountType.UNIT_PRICE:
        what = f"${rules.value / 100:,.2f} per user per month"
    else:
        what = f"${rules.value / 100:,.2f} off"
    return what + (" for the first year" if rules.first_term_only else " every year")


def apply(state: CodeState, lines: Sequence[LineItem]) -> AppliedDiscount:
    return AppliedDiscount(code=state.code, description=f"{state.rules.name}: {describe(state.rules)}",
                           first_term_only=state.rules.first_term_only,
                           amounts=discount_amounts(state.rules, lines))


def validate_rules(rules: CampaignRules, known_skus: set[str]) -> str | None:
    """Why a campaign's rules make no sense, or None."""
    if rules.discount_type is DiscountType.PERCENT and not 1 <= rules.value <= 100:
        return "A percent discount is between 1 and 100."
    if rules.value < 1:
        return "The discount value must be positive."
    if not rules.applies_to:
        return "Say which plans or add-ons the code applies to."
    unknown = sorted(set(rules.applies_to) - known_skus)
    if unknown:
        return f"Unknown plans or add-ons: {', '.join(unknown)}."
    if rules.valid_from and rules.valid_until and rules.valid_from >= rules.valid_until:
        return "valid_from must be before valid_until."
    if rules.min_seats is not None and rules.max_seats is not None and rules.min_seats > rules.max_seats:
        return "min_seats must not exceed max_seats."
    return None
