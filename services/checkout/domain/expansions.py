"""Growing what a namespace has: more seats, a Duo add-on or more of its seats,
compute-minute and storage packs. Plain Python, priced with pricing.py's one
proration rule (`term_left`): what is added mid-term ends with the
subscription's term and costs the full-term price times days left over days
in the term, rounded to the cent once per line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from services.checkout.domain.catalog import Catalog
from services.checkout.domain.pricing import (
    AppliedDiscount,
    LineItem,
    NamespaceFacts,
    Priced,
    add_months,
    require_top_level,
    term_left,
)
from services.common.errors import Invalid, NotFound


class Kind(StrEnum):
    SEATS = "seats"
    ADDON = "addon"
    COMPUTE_MINUTES = "compute_minutes"
    STORAGE = "storage"


PACKS = (Kind.COMPUTE_MINUTES, Kind.STORAGE)


@dataclass(frozen=True)
class Expansion:
    kind: Kind
    quantity: int
    sku: str | None = None  # the add-on, for kind "addon"


@dataclass(frozen=True)
class Holdings:
    """The packs a namespace holds now (its subscription is in NamespaceFacts)."""

    compute_minutes: int = 0
    storage_gib: int = 0


@dataclass(frozen=True)
class After:
    """What the namespace has once the expansion is bought."""

    plan: str
    seats: int
    addons: tuple[tuple[str, int], ...]
    compute_minutes: int
    storage_gib: int


@dataclass(frozen=True)
class ExpansionQuote(Priced):
    namespace_id: int
    expansion: Expansion
    heading: str
    currency: str
    catalog_version: str
    subscription_id: int | None
    plan: str
    term_start: date
    term_end: date | None  # None: compute minutes never end
    days_left: int | None
    term_days: int | None
    lines: tuple[LineItem, ...]
    after: After
    discount: AppliedDiscount | None = None
    upgrade_of: None = None  # never an upgrade: discount rules for upgrades do not apply

    @property
    def seats(self) -> int:
        """What a code's seat limits count: the seats (or packs) bought."""
        return self.expansion.quantity


NO_SUBSCRIPTION = NotFound("no_subscription", "No subscription",
                           "This namespace has no active subscription to add to; buy a plan first.")


def price_expansion(catalog: Catalog, expansion: Expansion, namespace: NamespaceFacts, path: str,
                    holdings: Holdings, today: date,
                    discount: AppliedDiscount | None = None) -> ExpansionQuote:
    """Check the rules and price `expansion` for `namespace` on `today`."""
    if (expansion.kind is Kind.ADDON) != (expansion.sku is not None):
        raise Invalid("validation_failed", "The request body or parameters are invalid",
                      "Some fields are missing or invalid; see 'errors'.",
                      errors={"json": {"sku": ["Required for kind addon, and only for it."]}})
    require_top_level(namespace)
    current = namespace.current
    seats = current.seats if current else 0
    addons = dict(current.addons) if current else {}
    minutes, gib = holdings.compute_minutes, holdings.storage_gib
    term_end: date | None
    if expansion.kind in PACKS:
        pack = catalog.packs[expansion.kind.value]
        if expansion.quantity > pack.max_quantity:
            raise Invalid("quantity_above_maximum", "Too many packs",
                          f"Up to {pack.max_quantity} packs of {pack.name} per order; "
                          "contact sales for more.",
                          maximum_quantity=pack.max_quantity)
        units = pack.size * expansion.quantity
        amount = pack.unit_amount * expansion.quantity
        if expansion.kind is Kind.COMPUTE_MINUTES:
            term_end, left, minutes = None, None, minutes + units
            line = LineItem(pack.id, "pack", f"{units:,} compute minutes, one-time", expansion.quantity,
                            pack.unit_amount, amount)
            heading = f"Buy {units:,} compute minutes for {path}"
        elif current is not None:  # storage ends, and renews, with the subscription
            left, term_end, gib = term_left(current, today), current.term_end, gib + units
            line = LineItem(pack.id, "pack", f"{units} GiB storage, {left.period}", expansion.quantity,
                            pack.unit_amount, left.price(amount))
            heading = f"Add {units} GiB of storage to {path}"
        else:
            term_end, left, gib = add_months(today, catalog.term_months), None, gib + units
            line = LineItem(pack.id, "pack", f"{units} GiB storage, {catalog.term_months} months",
                            expansion.quantity, pack.unit_amount, amount)
            heading = f"Add {units} GiB of storage to {path}"
    else:
        if current is None:
            raise NO_SUBSCRIPTION
        left, term_end = term_left(current, today), current.term_end
        plan = catalog.plans[current.plan]
        if expansion.kind is Kind.SEATS:
            if seats + expansion.quantity > catalog.max_seats:
                raise Invalid("seats_above_maximum", "Too many seats",
                              f"Self-service subscriptions are limited to {catalog.max_seats} seats; "
                              f"{path} has {seats}. Contact sales for more.",
                              maximum_seats=catalog.max_seats)
            seats += expansion.quantity
            line = LineItem(f"{plan.id}_seats", "seats",
                            f"{plan.name}, {expansion.quantity} more seats, {left.period}",
                            expansion.quantity, plan.unit_amount,
                            left.price(plan.unit_amount * expansion.quantity))
            heading = f"Add {_seats(expansion.quantity)} to {path}'s {plan.name}"
        else:
            line, heading = _addon_line(catalog, expansion, current.plan, seats, addons, path, left.period,
                                        left.price)
            addons[line.sku] = addons.get(line.sku, 0) + expansion.quantity
    lines = [line]
    if discount is not None:
        lines = [LineItem(**{**item.__dict__,
                             "discount": min(item.amount, discount.amounts.get(item.sku, 0))})
                 for item in lines]
    total = sum(item.net for item in lines)
    if total > catalog.max_order_amount:
        raise Invalid("order_too_large", "Order too large for self-service",
                      f"Online purchases are limited to ${catalog.max_order_amount / 100:,.2f}; "
                      "contact sales for this order.", maximum_amount=catalog.max_order_amount)
    return ExpansionQuote(
        namespace_id=namespace.id, expansion=expansion, heading=heading, currency=catalog.currency,
        catalog_version=catalog.version, subscription_id=current.subscription_id if current else None,
        plan=current.plan if current else namespace.current_plan, term_start=today, term_end=term_end,
        days_left=left.days_left if left else None, term_days=left.term_days if left else None,
        lines=tuple(lines), discount=discount,
        after=After(current.plan if current else namespace.current_plan, seats,
                    tuple(sorted(addons.items())), minutes, gib))


def _addon_line(catalog: Catalog, expansion: Expansion, plan_id: str, seats: int, held: dict[str, int],
                path: str, period: str, price: Callable[[int], int]) -> tuple[LineItem, str]:
    addon = catalog.addons.get(expansion.sku or "")
    if addon is None:
        raise Invalid("unknown_addon", "Unknown add-on",
                      f"There is no add-on '{expansion.sku}'. Choose one of: {', '.join(catalog.addons)}.")
    if plan_id not in addon.requires_plans:
        needs = " or ".join(catalog.plans[p].name for p in addon.requires_plans)
        raise Invalid("addon_not_available", "Add-on not available on this plan",
                      f"{addon.name} needs {needs}; {path} has {catalog.plans[plan_id].name}.")
    already = held.get(addon.id, 0)
    if already + expansion.quantity > seats:
        raise Invalid("addon_seats_exceed_plan", "Add-on seats out of range",
                      f"{addon.name} can have at most {seats} seats (the subscription's seats); "
                      f"{path} has {already}, so at most {seats - already} more.",
                      maximum_seats=seats, available_seats=seats - already)
    line = LineItem(addon.id, "addon", f"{addon.name}, {expansion.quantity} more seats, {period}",
                    expansion.quantity, addon.unit_amount, price(addon.unit_amount * expansion.quantity))
    if already:
        return line, f"Add {_seats(expansion.quantity)} to {path}'s {addon.name}"
    return line, f"Add {addon.name} for {_seats(expansion.quantity)} to {path}"


def _seats(n: int) -> str:
    return f"{n:,} seat" + ("" if n == 1 else "s")
