"""Renewal rules: what a renewal costs, when people are told, when cards are
retried. One function prices a renewal for both the reminder and the charge,
so the amount an email states is the amount that is charged unless something
changed in between (and then `changes` names it)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from services.checkout.domain.catalog import Catalog
from services.checkout.domain.pricing import LineItem, add_months
from services.common.errors import Invalid

RULES_FILE = Path(__file__).resolve().parents[1] / "data" / "renewal.toml"


@dataclass(frozen=True)
class RenewalRules:
    reminder_days: tuple[int, ...]
    auto_renewal_notice_days: int
    manual_renewal_window_days: int
    grace_days: int
    dunning_retry_days: tuple[int, ...]
    charge_error_retry_hours: int

    @classmethod
    def load(cls, path: Path = RULES_FILE) -> RenewalRules:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
        rules = cls(tuple(sorted(data["reminder_days"], reverse=True)), int(data["auto_renewal_notice_days"]),
                    int(data["manual_renewal_window_days"]), int(data["grace_days"]),
                    tuple(sorted(data["dunning_retry_days"])), int(data["charge_error_retry_hours"]))
        if rules.dunning_retry_days and rules.dunning_retry_days[-1] > rules.grace_days:
            raise ValueError("card retries must fall within the grace period")
        return rules

    def notices(self, auto_renew: bool) -> tuple[int, ...]:
        """Days before the renewal date on which the customer hears of it, latest last."""
        days = self.reminder_days + ((self.auto_renewal_notice_days,) if auto_renew else ())
        return tuple(sorted(set(days), reverse=True))

    def windows(self, auto_renew: bool) -> tuple[tuple[int, int], ...]:
        """(days_before, next_days_before) of each notice, latest last.

        A notice is due while the renewal is at most `days_before` and more
        than `next_days_before` days away (0 for the last: the renewal date).
        Found late within that window (a subscription bought 65 days before
        its end, a sweep that did not run), it is still sent, once, and states
        the days actually left; once the window has passed, the next notice
        is due instead and the late one is skipped, never sent as well."""
        days = self.notices(auto_renew)
        return tuple(zip(days, days[1:] + (0,), strict=True))

    def next_notice(self, days_before: int, auto_renew: bool) -> int:
        """The days_before of the notice after the `days_before` one (0: none, the renewal date)."""
        return dict(self.windows(auto_renew)).get(days_before, 0)


@dataclass(frozen=True)
class ScheduledChange:
    """What the customer asked to change at the next renewal (None: keep as is)."""
    seats: int | None = None
    plan: str | None = None
    drop_addons: tuple[str, ...] = ()

    def describe(self, catalog: Catalog) -> list[str]:
        said = []
        if self.plan is not None:
            said.append(f"Move to {catalog.plan_name(self.plan)}.")
        if self.seats is not None:
            said.append(f"Renew with {self.seats} seats.")
        said += [f"Drop {catalog.addons[sku].name if sku in catalog.addons else sku}."
                 for sku in self.drop_addons]
        return said


@dataclass(frozen=True)
class Term:
    plan: str
    seats: int
    addons: tuple[tuple[str, int], ...]
    term_start: date
    term_end: date
    storage_packs: int = 0  # storage bought for the subscription renews with it
    change: ScheduledChange | None = None


@dataclass(frozen=True)
class RenewalQuote:
    renewal_date: date
    new_term_end: date
    plan: str
    seats: int
    seats_owed: int
    lines: tuple[LineItem, ...]
    currency: str
    dropped_addons: tuple[str, ...] = ()
    scheduled: tuple[str, ...] = ()  # the scheduled change, in words

    @property
    def total(self) -> int:
        return sum(line.amount for line in self.lines)

    def snapshot(self) -> dict[str, Any]:
        return {"renewal_date": self.renewal_date.isoformat(), "new_term_end": self.new_term_end.isoformat(),
                "plan": self.plan, "seats": self.seats, "seats_owed": self.seats_owed,
                "total": self.total, "currency": self.currency, "scheduled_change": list(self.scheduled),
                "lines": [{"sku": line.sku, "description": line.description, "quantity": line.quantity,
                           "unit_amount": line.unit_amount, "amount": line.amount, "discount": 0,
                           "net": line.amount} for line in self.lines]}


def renewal_quote(catalog: Catalog, term: Term, billable_members: int) -> RenewalQuote:
    """List prices on the renewal date; seats rise to the billable members if
    higher; first-term discounts are gone (nothing of the old order is reused).
    A scheduled change (fewer seats, a lower plan, an add-on dropped) applies,
    but seats never go below the billable members."""
    change = term.change or ScheduledChange()
    plan = catalog.plans[change.plan or term.plan]
    seats = max(term.seats if change.seats is None else change.seats, billable_members, 1)
    lines = [LineItem(plan.id, "plan", f"{plan.name} plan, {seats} seats, 12 months", seats,
                      plan.unit_amount, plan.unit_amount * seats)]
    # An add-on the renewing plan can not carry ends with the term (one bought after a
    # lower plan was scheduled, say), as if it had been dropped with the change.
    dropped = tuple(sorted({*change.drop_addons, *(sku for sku, _ in term.addons
                                                   if plan.id not in catalog.addons[sku].requires_plans)}))
    for sku, addon_seats in term.addons:
        if sku in dropped:
            continue
        addon = catalog.addons[sku]
        quantity = min(addon_seats, seats)
        lines.append(LineItem(sku, "addon", f"{addon.name}, {quantity} seats, 12 months", quantity,
                              addon.unit_amount, addon.unit_amount * quantity))
    if term.storage_packs:
        pack = catalog.packs["storage"]
        lines.append(LineItem(pack.id, "pack", f"{pack.size * term.storage_packs} {pack.unit} storage, "
                              "12 months", term.storage_packs, pack.unit_amount,
                              pack.unit_amount * term.storage_packs))
    return RenewalQuote(term.term_end, add_months(term.term_end, catalog.term_months), plan.id, seats,
                        max(0, billable_members - term.seats), tuple(lines), catalog.currency,
                        dropped, tuple(change.describe(catalog)))


def check_change(catalog: Catalog, term: Term, billable_members: int, change: ScheduledChange) -> None:
    """A change for the next renewal: fewer seats (never below the billable members),
    a lower plan, add-ons dropped. What the new plan can not carry must be dropped too."""
    if change.seats is None and change.plan is None and not change.drop_addons:
        raise Invalid("nothing_to_change", "Nothing to change",
                      "Give seats, a lower plan or add-ons to drop at the next renewal.")
    if change.seats is not None and change.seats < max(billable_members, 1):
        raise Invalid("seats_below_billable", "Too few seats",
                      f"The namespace has {billable_members} billable members, so it renews with at least "
                      f"{max(billable_members, 1)} seats.", minimum_seats=max(billable_members, 1))
    if change.plan is not None:
        current = catalog.plans[term.plan]
        lower = catalog.plans.get(change.plan)
        if lower is None or not lower.purchasable or lower.rank >= current.rank:
            raise Invalid("plan_not_lower", "Not a lower plan",
                          f"At renewal {current.name} can move only to a lower paid plan.")
    held = {sku for sku, _ in term.addons}
    for sku in change.drop_addons:
        if sku not in held:
            raise Invalid("addon_not_held", "Add-on not held", f"The subscription has no {sku} to drop.")
    plan = change.plan or term.plan
    for sku in sorted(held - set(change.drop_addons)):
        addon = catalog.addons[sku]
        if plan not in addon.requires_plans:
            raise Invalid("addon_needs_plan", "Add-on needs a higher plan",
                          f"{addon.name} needs {' or '.join(addon.requires_plans)}: drop it too.", addon=sku)


def changes_between(stated: dict[str, Any] | None, charged: RenewalQuote) -> list[str]:
    """What differs between the last reminder's quote and the charge, in words."""
    if stated is None:
        return []
    changes = []
    if stated["seats"] != charged.seats:
        changes.append(f"Seats changed from {stated['seats']} to {charged.seats} "
                       "(billable members grew since the reminder).")
    if stated["plan"] != charged.plan:
        changes.append(f"The plan changed from {stated['plan']} to {charged.plan}.")
    before = {line["sku"]: line["amount"] for line in stated["lines"]}
    after = {line.sku: line.amount for line in charged.lines}
    for sku in sorted(set(before) | set(after)):
        if sku != charged.plan and before.get(sku) != after.get(sku):
            changes.append(f"{sku.replace('_', ' ').title()} changed.")
    if not changes and stated["total"] != charged.total:
        changes.append("List prices changed since the reminder.")
    return changes


def next_retry(renewal_date: date, today: date, rules: RenewalRules) -> date | None:
    """When to try the card again after a failure today, or None: dunning is over.

    Before the renewal date (a manual renewal that failed) the next try is the
    renewal date itself; after it, the next dunning day still ahead."""
    if today < renewal_date:
        return renewal_date
    ahead = [renewal_date + timedelta(days=d) for d in rules.dunning_retry_days
             if renewal_date + timedelta(days=d) > today]
    return ahead[0] if ahead else None


def card_flags(exp_month: int, exp_year: int, today: date, renewal_date: date) -> dict[str, bool]:
    """A card is valid through the last day of its expiry month."""
    first_invalid = date(exp_year + (exp_month == 12), exp_month % 12 + 1, 1)
    return {"expired": first_invalid <= today, "expires_before_renewal": first_invalid <= renewal_date}


def manual_renewal_opens(term_end: date, rules: RenewalRules) -> date:
    return term_end - timedelta(days=rules.manual_renewal_window_days)


def grace_ends(term_end: date, rules: RenewalRules) -> date:
    return term_end + timedelta(days=rules.grace_days)
