"""An order's life: which status may follow which, and what each change publishes.

    pending ──────────► requires_action ──► completed
       │ │ └─► completed        │ │
       │ └───► failed ◄─────────┘ └──► canceled (a newer purchase replaced it)
       └─────► abandoned (stale, replaced)
    failed / canceled / abandoned ──► failed (money that came late, refunded)

The functions are pure: they take the current status (and what the events
carry) and return the new status with the events to publish, or refuse a
change the rules do not allow. Use cases load and lock the order, call one,
and save what it returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from contracts.events import Event, OrderCompleted, SubscriptionChanged, SubscriptionExpanded
from services.common.errors import Conflict


class OrderStatus(StrEnum):
    PENDING = "pending"
    REQUIRES_ACTION = "requires_action"  # the bank asks for 3-D Secure
    COMPLETED = "completed"
    FAILED = "failed"  # declined, or paid and refunded
    CANCELED = "canceled"  # replaced while waiting for 3-D Secure
    ABANDONED = "abandoned"  # replaced after it went stale while pending


# At most one open order per namespace (a partial unique index holds it).
OPEN = frozenset({OrderStatus.PENDING, OrderStatus.REQUIRES_ACTION})
# Nothing more can be provisioned from a closed order; money it gets is returned.
CLOSED = frozenset({OrderStatus.FAILED, OrderStatus.CANCELED, OrderStatus.ABANDONED})


class InvalidTransition(Conflict):
    def __init__(self, current: OrderStatus, target: OrderStatus) -> None:
        super().__init__("invalid_order_transition", "Not possible in this state",
                         f"An order that is {current} can not become {target}.")


@dataclass(frozen=True)
class Transition:
    status: OrderStatus
    events: list[Event] = field(default_factory=list)


def _move(current: str, target: OrderStatus, allowed_from: frozenset[OrderStatus]) -> OrderStatus:
    status = OrderStatus(current)
    if status not in allowed_from:
        raise InvalidTransition(status, target)
    return target


def require_action(current: str) -> Transition:
    """The bank asks the buyer to authenticate (3-D Secure)."""
    return Transition(_move(current, OrderStatus.REQUIRES_ACTION, OPEN))


def decline(current: str) -> Transition:
    """The card was declined: nothing was charged."""
    return Transition(_move(current, OrderStatus.FAILED, OPEN))


def refund(current: str) -> Transition:
    """Money came for an order that can not be provisioned: it is given back."""
    return Transition(_move(current, OrderStatus.FAILED, OPEN | CLOSED))


def supersede(current: str) -> Transition:
    """A newer purchase for the namespace replaces this open order."""
    status = OrderStatus(current)
    target = OrderStatus.CANCELED if status is OrderStatus.REQUIRES_ACTION else OrderStatus.ABANDONED
    return Transition(_move(current, target, OPEN))


def complete(current: str, receipt: OrderCompleted, subscription: SubscriptionChanged, *,
             upgrade: bool) -> Transition:
    """Paid and provisioned: the receipt (the order as it now is) goes out, and
    the namespace's subscription was created or upgraded."""
    status = _move(current, OrderStatus.COMPLETED, OPEN)
    return Transition(status, [
        Event("order.completed", {**receipt, "status": status}),
        Event("subscription.upgraded" if upgrade else "subscription.created", subscription),
    ])


def complete_expansion(current: str, receipt: OrderCompleted,
                       expanded: SubscriptionExpanded | None) -> Transition:
    """Paid and added: the receipt goes out, and the subscription grew (None:
    packs for a namespace without one)."""
    status = _move(current, OrderStatus.COMPLETED, OPEN)
    return Transition(status, [Event("order.completed", {**receipt, "status": status})]
                      + ([Event("subscription.expanded", expanded)] if expanded is not None else []))
