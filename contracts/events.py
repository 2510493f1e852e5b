"""Events between services: one definition of each topic's payload, shared by
the producer that publishes it and the consumers that read it.

Each contract is a TypedDict: its required keys are what some consumer relies
on (a producer must send them, with the type given); `NotRequired` keys are
read when present. Consumers ignore keys they do not know, so a producer may
send more. `tests/integration/test_event_contracts.py` holds both sides to
it: every payload published in the tests meets its topic's contract, and each
consumer accepts a payload that carries no more than the contract requires.
"""

# No `from __future__ import annotations` here: a TypedDict learns which keys
# are NotRequired from its annotations when the class is made.
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict, Union, get_args, get_origin, get_type_hints


@dataclass(frozen=True)
class Event:
    topic: str
    payload: Mapping[str, Any]


class Card(TypedDict):
    brand: str
    last4: str
    exp_month: int
    exp_year: int


# --- checkout's -----------------------------------------------------------------
class OrderCompleted(TypedDict):
    """A receipt: the order as completed (an order view) and who pays for it."""
    order_id: int
    namespace_id: int
    user_id: int
    email: str
    namespace_path: str
    plan: str
    seats: int
    lines: list[dict[str, Any]]
    total: int
    currency: str
    term_start: str
    term_end: str
    company: NotRequired[str | None]
    subtotal: NotRequired[int]
    discount_total: NotRequired[int]
    discount_code: NotRequired[str | None]
    card: NotRequired[Card | None]
    upgrade_from: NotRequired[str]
    # "purchase" (a first order), "upgrade" or "expansion"; absent means "purchase".
    kind: NotRequired[str]
    # {experiment key: variation index} the buyer was in when the order completed.
    variations: NotRequired[dict[str, int]]
    heading: NotRequired[str | None]  # an expansion's "Add 3 seats to globex's Premium"
    renewal: NotRequired[dict[str, Any] | None]  # an expansion's: the next renewal's new quote


class OrderRefunded(TypedDict):
    """Support gave back part or all of an order's charge."""
    order_id: int
    namespace_id: int
    namespace_path: str
    email: str
    amount: int
    currency: str
    refunded_total: NotRequired[int]
    amount_charged: NotRequired[int]
    reason: NotRequired[str]


class SubscriptionChanged(TypedDict):
    """subscription.created and .upgraded: what the namespace now pays for."""
    subscription_id: int
    namespace_id: int
    namespace_path: str
    plan: str
    seats: int
    addons: list[dict[str, Any]]
    features: list[str]
    plan_before: NotRequired[str]
    # Checkout's time of the change: orders a namespace's plan changes for trials' read model.
    changed_at: NotRequired[str]


class Added(TypedDict):
    kind: str  # seats, addon or pack
    sku: str
    quantity: int


class SubscriptionExpanded(SubscriptionChanged):
    """subscription.expanded: seats, an add-on or storage added mid-term."""
    order_id: int
    added: list[Added]


class SubscriptionNotice(TypedDict):
    """Who hears of a subscription's renewal or end: its billing contact."""
    subscription_id: int
    namespace_id: int
    namespace_path: str
    email: str


class RenewalUpcoming(SubscriptionNotice):
    renewal_date: str
    days_before: int
    auto_renew: bool
    plan: str
    # Always sent; the auto-renewal notice can not go out without the quote.
    quote: dict[str, Any] | None
    card: dict[str, Any] | None
    company: NotRequired[str | None]


class SubscriptionRenewed(SubscriptionNotice):
    amount: int
    currency: str
    term_start: str
    term_end: str
    seats: int
    plan: NotRequired[str]
    changes: NotRequired[list[str]]
    addons: NotRequired[list[dict[str, Any]]]
    changed_at: NotRequired[str]


class RenewalFailed(SubscriptionNotice):
    amount: int
    currency: str
    attempt: int
    renewal_date: str
    final: bool
    update_card_url: str
    next_attempt_at: NotRequired[str | None]


class AutoRenewChanged(SubscriptionNotice):
    """Automatic renewal turned on or off, by an Owner or billing manager (`by`)."""
    auto_renew: bool
    by: int
    plan: str
    term_end: str
    grace_ends: NotRequired[str]
    reason: NotRequired[str | None]
    reason_label: NotRequired[str | None]
    renewal_total: NotRequired[int]
    currency: NotRequired[str]
    billing_url: NotRequired[str]


class SubscriptionExpired(SubscriptionNotice):
    plan: str
    term_end: str
    changed_at: NotRequired[str]


class SeatReconciliationNotice(SubscriptionNotice):
    """subscription.overage_notice, .seats_reconciled and .reconciliation_failed:
    a quarter's seat reconciliation, one event per Owner."""
    reconciliation_id: int
    quarter: int
    term_start: str
    overage_seats: int
    amount: int
    currency: str
    seats: int
    seats_before: NotRequired[int]


class OverageNotice(SeatReconciliationNotice):
    max_seats_used: int
    charge_on: str


class ReconciliationFailed(SeatReconciliationNotice):
    attempt: int
    final: bool
    update_card_url: str
    next_attempt_at: NotRequired[str | None]


class SeatsExplained(SubscriptionNotice):
    """subscription.seats_explained: after a renewal, how seats are counted and billed (per Owner)."""
    term_start: str
    term_end: str
    seats: int
    send_on: str


class DuoSeatsRemoved(TypedDict):
    """subscription.duo_seats_removed: assignments cut back to fewer seats (per Owner)."""
    namespace_id: int
    namespace_path: str
    email: str
    sku: str
    seats: int
    removed_user_ids: list[int]
    change_id: str


class ManagerInvited(TypedDict):
    """An Owner invited someone to manage a namespace's billing: the mail carries the link."""
    invitation_id: int
    namespace_id: int
    namespace_path: str
    email: str
    accept_url: str
    expires_at: str
    invited_by_email: NotRequired[str]


class CardExpiring(TypedDict):
    billing_account_id: int
    email: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int


class DirectoryChange(TypedDict):
    """Every directory.* event: a change the platform's system hooks told checkout,
    after checkout put them in order; `changed_at` is the platform's time of it."""
    group_id: int
    changed_at: str


class GroupCreated(DirectoryChange):
    name: str
    path: str  # the full path: "acme/backend"
    parent_id: int | None


class GroupRenamed(DirectoryChange):
    name: str
    path: str
    old_path: str  # subgroups' paths moved with it (no event of their own)


class GroupDestroyed(DirectoryChange):
    path: str


class MemberChanged(DirectoryChange):
    """directory.member_added and .member_updated: the member's role now."""
    user_id: int
    role: str
    billable: bool
    previous_role: NotRequired[str]


class MemberRemoved(DirectoryChange):
    user_id: int
    role: str  # the role they had


class SnapshotMember(TypedDict):
    user_id: int
    role: str | None  # None: removed
    changed_at: str
    last_event: str  # the directory.* topic's name that set it: "member_added"


class NamespaceSnapshot(TypedDict):
    """directory.namespace_snapshot: everything trials' read model holds of one
    namespace, as checkout has it now (republished on demand: `python -m
    services.checkout.snapshot`). Each fact keeps the time of the change that
    set it, so a snapshot never overrides a newer event, nor an older one it."""
    namespace_id: int
    path: str
    kind: str  # group or user
    parent_id: int | None
    destroyed: bool
    changed_at: str  # the platform's time of the group's last change
    last_event: str  # "group_created", "group_renamed" or "group_destroyed"
    plan: str
    addons: dict[str, list[str]]  # {subscription id: add-on skus}
    plan_changed_at: str  # checkout's time of this snapshot (its plan and add-ons)
    members: list[SnapshotMember]


DIRECTORY_CONTRACTS: dict[str, type] = {
    "directory.group_created": GroupCreated, "directory.group_renamed": GroupRenamed,
    "directory.group_destroyed": GroupDestroyed, "directory.member_added": MemberChanged,
    "directory.member_updated": MemberChanged, "directory.member_removed": MemberRemoved,
    "directory.namespace_snapshot": NamespaceSnapshot,
}


# --- trials' --------------------------------------------------------------------
class TrialChanged(TypedDict):
    """Every trial.* event: the trial as it now is; `version` orders them."""
    version: int
    trial_id: int
    namespace_id: int
    namespace_path: str
    kind: str
    status: str
    ends_at: str
    occurred_at: str
    email: str
    grants_plan: NotRequired[str | None]
    grants_addon: NotRequired[str | None]
    seats: NotRequired[int | None]
    seat_holder: NotRequired[int | None]
    user_id: NotRequired[int | None]
    plan_before: NotRequired[str | None]


TRIAL_TOPICS = ("trial.started", "trial.extended", "trial.reactivated", "trial.expired", "trial.converted")

# The topics that cross services, and their contracts.
CONTRACTS: dict[str, type] = {
    "order.completed": OrderCompleted,
    "order.refunded": OrderRefunded,
    "subscription.created": SubscriptionChanged,
    "subscription.upgraded": SubscriptionChanged,
    "subscription.expanded": SubscriptionExpanded,
    "subscription.renewal_upcoming": RenewalUpcoming,
    "subscription.renewed": SubscriptionRenewed,
    "subscription.renewal_failed": RenewalFailed,
    "subscription.expired": SubscriptionExpired,
    "subscription.auto_renew_changed": AutoRenewChanged,
    "card.expiring": CardExpiring,
    "subscription.overage_notice": OverageNotice,
    "subscription.seats_reconciled": SeatReconciliationNotice,
    "subscription.reconciliation_failed": ReconciliationFailed,
    "subscription.seats_explained": SeatsExplained,
    "subscription.duo_seats_removed": DuoSeatsRemoved,
    **DIRECTORY_CONTRACTS,
    "billing.manager_invited": ManagerInvited,
    **{topic: TrialChanged for topic in TRIAL_TOPICS},
}


def required_fields(topic: str) -> frozenset[str]:
    return frozenset(CONTRACTS[topic].__required_keys__)  # type: ignore[attr-defined]


def violations(topic: str, payload: Mapping[str, Any]) -> list[str]:
    """How a payload breaks its topic's contract (none for a topic without one)."""
    contract = CONTRACTS.get(topic)
    if contract is None:
        return []
    found = []
    for name, expected in get_type_hints(contract).items():
        if name not in payload:
            if name in contract.__required_keys__:  # type: ignore[attr-defined]
                found.append(f"{name} is missing")
        elif not _fits(payload[name], expected):
            found.append(f"{name} is not {expected}: {payload[name]!r}"[:200])
    return found


def _fits(value: Any, expected: Any) -> bool:
    origin = get_origin(expected)
    if origin in (Union, types.UnionType):
        return any(_fits(value, option) for option in get_args(expected))
    if expected is type(None):
        return value is None
    if isinstance(expected, type) and hasattr(expected, "__required_keys__"):  # a nested TypedDict
        return isinstance(value, dict) and not [
            name for name in expected.__required_keys__ if name not in value]
    kind = origin or expected
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)
