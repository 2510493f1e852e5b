"""Pricing and seat rules for a purchase. Plain Python: no I/O, no framework.

Amounts are integer cents. A quote is built in two steps: `price_lines` turns
a selection (plan, seats, add-ons) into list-price lines after checking the
seat and add-on rules, then `assemble_quote` applies an optional discount and
adds the totals.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from services.checkout.domain.catalog import Catalog
from services.common.errors import Conflict, Invalid


@dataclass(frozen=True)
class AddOnSelection:
    sku: str
    seats: int


@dataclass(frozen=True)
class Selection:
    plan: str
    seats: int
    addons: tuple[AddOnSelection, ...] = ()


@dataclass(frozen=True)
class CurrentTerm:
    """The namespace's active subscription, for pricing an upgrade."""

    subscription_id: int
    plan: str
    seats: int
    term_start: date
    term_end: date
    addons: tuple[tuple[str, int], ...] = ()  # (sku, seats) already paid for this term


@dataclass(frozen=True)
class NamespaceFacts:
    """What pricing needs to know about the namespace being bought for."""

    id: int
    is_top_level: bool
    current_plan: str
    billable_members: int
    current: CurrentTerm | None = None


@dataclass(frozen=True)
class LineItem:
    sku: str
    kind: str  # "plan" or "addon"
    description: str
    quantity: int
    unit_amount: int
    amount: int
    discount: int = 0

    @property
    def net(self) -> int:
        return self.amount - self.discount


@dataclass(frozen=True)
class AppliedDiscount:
    code: str
    description: str
    first_term_only: bool
    # cents off, per line sku
    amounts: dict[str, int] = field(default_factory=dict)


class Priced:
    """The totals of priced lines: a quote's, an expansion quote's."""

    lines: tuple[LineItem, ...]

    @property
    def subtotal(self) -> int:
        return sum(line.amount for line in self.lines)

    @property
    def discount_total(self) -> int:
        return sum(line.discount for line in self.lines)

    @property
    def total(self) -> int:
        return self.subtotal - self.discount_total


@dataclass(frozen=True)
class Quote(Priced):
    namespace_id: int
    plan: str
    seats: int
    minimum_seats: int
    billable_members: int
    currency: str
    catalog_version: str
    term_start: date
    term_end: date
    lines: tuple[LineItem, ...]
    discount: AppliedDiscount | None = None
    upgrade_of: int | None = None  # the subscription an upgrade changes


def minimum_seats(billable_members: int) -> int:
    return max(1, billable_members)


def add_months(start: date, months: int) -> date:
    """Same day `months` later; the 29th-31st fall back to the month's last day."""
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def require_top_level(namespace: NamespaceFacts) -> None:
    if not namespace.is_top_level:
        raise Invalid("not_top_level", "Not a top-level namespace",
                      "Subscriptions are bought for top-level groups only; choose the parent group.")


def price_lines(catalog: Catalog, selection: Selection, namespace: NamespaceFacts,
                today: date | None = None) -> list[LineItem]:
    plan = catalog.plans.get(selection.plan)
    if plan is None:
        raise Invalid("unknown_plan", "Unknown plan",
                      f"There is no plan '{selection.plan}'. Choose one of: "
                      f"{', '.join(p for p, v in catalog.plans.items() if v.purchasable)}.")
    if not plan.purchasable:
        raise Invalid("plan_not_purchasable", "Plan not for sale",
                      f"The {plan.name} plan can not be bought.")
    require_top_level(namespace)
    minimum = minimum_seats(namespace.billable_members)
    if selection.seats < minimum:
        raise Invalid(
            "seats_below_minimum", "Too few seats",
            f"This namespace has {namespace.billable_members} billable members, so at least "
            f"{minimum} seats are needed.",
            minimum_seats=minimum, billable_members=namespace.billable_members,
        )
    if selection.seats > catalog.max_seats:
        raise Invalid("seats_above_maximum", "Too many seats",
                      f"Self-service purchases are limited to {catalog.max_seats} seats; "
                      "contact sales for more.", maximum_seats=catalog.max_seats)
    if namespace.current is not None:
        return _upgrade_lines(catalog, selection, namespace.current, today or namespace.current.term_start)
    lines = [LineItem(plan.id, "plan", f"{plan.name} plan, {selection.seats} seats, 12 months",
                      selection.seats, plan.unit_amount, plan.unit_amount * selection.seats)]
    return lines + _addon_lines(catalog, selection, plan.id, lambda amount: amount, "12 months")


def _addon_lines(catalog: Catalog, selection: Selection, plan_id: str,
                 price: Callable[[int], int], period: str) -> list[LineItem]:
    lines: list[LineItem] = []
    seen: set[str] = set()
    for chosen in selection.addons:
        addon = catalog.addons.get(chosen.sku)
        if addon is None:
            raise Invalid("unknown_addon", "Unknown add-on",
                          f"There is no add-on '{chosen.sku}'. Choose one of: "
                          f"{', '.join(catalog.addons)}.")
        if chosen.sku in seen:
            raise Invalid("duplicate_addon", "Add-on listed twice",
                          f"{addon.name} appears more than once.")
        seen.add(chosen.sku)
        if plan_id not in addon.requires_plans:
            needs = " or ".join(catalog.plans[p].name for p in addon.requires_plans)
            raise Invalid("addon_not_available", "Add-on not available on this plan",
                          f"{addon.name} needs {needs}.")
        if not 1 <= chosen.seats <= selection.seats:
            raise Invalid("addon_seats_exceed_plan", "Add-on seats out of range",
                          f"{addon.name} needs between 1 and {selection.seats} seats "
                          "(no more than the subscription's seats).",
                          maximum_seats=selection.seats)
        lines.append(LineItem(addon.id, "addon", f"{addon.name}, {chosen.seats} seats, {period}",
                              chosen.seats, addon.unit_amount, price(addon.unit_amount * chosen.seats)))
    return lines


def prorate(amount: int, days_left: int, term_days: int) -> int:
    """`amount` for `days_left` of a `term_days` term, to the nearest cent."""
    return (amount * days_left * 2 + term_days) // (term_days * 2)


@dataclass(frozen=True)
class TermLeft:
    """What is left of a subscription's term on a day: the one proration rule for
    everything bought mid-term (upgrades, seats, add-ons, storage)."""

    days_left: int
    term_days: int

    def price(self, amount: int) -> int:
        """A full term's `amount` for the days left, rounded to the cent once."""
        return prorate(amount, self.days_left, self.term_days)

    @property
    def period(self) -> str:
        return f"{self.days_left} of {self.term_days} days"


def term_left(current: CurrentTerm, today: date) -> TermLeft:
    """Days left counts today and stops before the end date (the renewal date):
    bought on the first day, the whole term; on the last day, one day. A term
    renewed early (its start still ahead) leaves more days than it has: what is
    bought then runs, and is paid, from today to the new end."""
    days_left = (current.term_end - today).days
    if days_left <= 0:
        raise Conflict("term_ended", "Term ended",
                       f"The term ended on {current.term_end.isoformat()}; renew instead.")
    return TermLeft(days_left, (current.term_end - current.term_start).days)


def _upgrade_lines(catalog: Catalog, selection: Selection, current: CurrentTerm,
                   today: date) -> list[LineItem]:
    """A move to a higher plan for the rest of the term: the difference for the
    seats already paid, the new plan for any seats added, both pro rata."""
    old, new = catalog.plans[current.plan], catalog.plans[selection.plan]
    if new.rank <= old.rank:
        raise Conflict("already_subscribed", "Namespace already subscribed",
                       f"This namespace already has {old.name} until {current.term_end.isoformat()}; "
                       "only an upgrade to a higher plan can be bought now.")
    if selection.seats < current.seats:
        raise Invalid("seats_below_minimum", "Too few seats",
                      f"An upgrade keeps at least the {current.seats} seats already bought.",
                      minimum_seats=current.seats)
    left = term_left(current, today)
    price, period = left.price, left.period
    lines = [LineItem(new.id, "plan", f"Upgrade {old.name} to {new.name}, {current.seats} seats, {period}",
                      current.seats, new.unit_amount - old.unit_amount,
                      price((new.unit_amount - old.unit_amount) * current.seats))]
    extra = selection.seats - current.seats
    if extra:
        lines.append(LineItem(f"{new.id}_seats", "seats", f"{new.name}, {extra} more seats, {period}",
                              extra, new.unit_amount, price(new.unit_amount * extra)))
    held = dict(current.addons)
    for line in _addon_lines(catalog, selection, new.id, lambda amount: amount, period):
        more = line.quantity - held.get(line.sku, 0)  # seats already paid are not paid again
        if more > 0:
            lines.append(LineItem(line.sku, "addon", f"{line.description.split(',')[0]}, {more} more seats, "
                                  f"{period}", more, line.unit_amount, price(line.unit_amount * more)))
    return lines


def assemble_quote(catalog: Catalog, selection: Selection, namespace: NamespaceFacts,
                   today: date, discount: AppliedDiscount | None = None) -> Quote:
    lines = price_lines(catalog, selection, namespace, today)
    if discount is not None:
        lines = [
            LineItem(**{**line.__dict__, "discount": min(line.amount, discount.amounts.get(line.sku, 0))})
            for line in lines
        ]
    total = sum(line.net for line in lines)
    if total > catalog.max_order_amount:
        raise Invalid("order_too_large", "Order too large for self-service",
                      f"Online purchases are limited to ${catalog.max_order_amount / 100:,.2f}; "
                      "contact sales for this order.", maximum_amount=catalog.max_order_amount)
    return Quote(
        namespace_id=namespace.id, plan=selection.plan, seats=selection.seats,
        minimum_seats=minimum_seats(namespace.billable_members),
        billable_members=namespace.billable_members, currency=catalog.currency,
        catalog_version=catalog.version, term_start=today,
        term_end=namespace.current.term_end if namespace.current else add_months(today, catalog.term_months),
        lines=tuple(lines), discount=discount,
        upgrade_of=namespace.current.subscription_id if namespace.current else None,
    )
