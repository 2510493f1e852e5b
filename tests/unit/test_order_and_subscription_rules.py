"""Which status may follow which for orders and subscriptions, and what each change publishes."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from services.checkout.domain import orders, subscriptions
from services.checkout.domain.orders import InvalidTransition, OrderStatus, Transition
from services.checkout.domain.subscriptions import SubscriptionStatus
from services.common.errors import Conflict

S = OrderStatus


def _complete(current: str) -> Transition:
    return orders.complete(current, {"order_id": 1, "status": current}, {"subscription_id": 2},
                           upgrade=False)


# (transition, {from: to} for every status it accepts); every other status is refused.
RULES: list[tuple[Callable[[str], Transition], dict[OrderStatus, OrderStatus]]] = [
    (orders.require_action, {S.PENDING: S.REQUIRES_ACTION, S.REQUIRES_ACTION: S.REQUIRES_ACTION}),
    (orders.decline, {S.PENDING: S.FAILED, S.REQUIRES_ACTION: S.FAILED}),
    (orders.refund, {S.PENDING: S.FAILED, S.REQUIRES_ACTION: S.FAILED, S.FAILED: S.FAILED,
                     S.CANCELED: S.FAILED, S.ABANDONED: S.FAILED}),
    (orders.supersede, {S.PENDING: S.ABANDONED, S.REQUIRES_ACTION: S.CANCELED}),
    (_complete, {S.PENDING: S.COMPLETED, S.REQUIRES_ACTION: S.COMPLETED}),
]
CASES = [(rule, current, allowed.get(current)) for rule, allowed in RULES for current in OrderStatus]


@pytest.mark.parametrize("rule,current,target", CASES,
                         ids=[f"{rule.__name__.strip('_')}-from-{current}" for rule, current, _ in CASES])
def test_each_order_transition_is_allowed_only_from_its_statuses(
        rule: Callable[[str], Transition], current: OrderStatus, target: OrderStatus | None) -> None:
    if target is None:
        with pytest.raises(InvalidTransition) as refused:
            rule(current.value)
        assert isinstance(refused.value, Conflict)
        assert refused.value.code == "invalid_order_transition"
    else:
        assert rule(current.value).status is target


def test_a_completed_order_never_changes_again() -> None:
    """Money that arrives twice is handled before a transition: a completed order stays completed."""
    for rule, _ in RULES:
        with pytest.raises(InvalidTransition):
            rule(S.COMPLETED.value)


def test_only_completing_an_order_publishes_events() -> None:
    assert [rule(S.PENDING.value).events for rule, _ in RULES if rule is not _complete] == [[]] * 4


@pytest.mark.parametrize("upgrade,topic", [(False, "subscription.created"), (True, "subscription.upgraded")])
def test_completing_an_order_sends_its_receipt_and_the_subscription_change(upgrade: bool, topic: str) -> None:
    transition = orders.complete("requires_action", {"order_id": 7, "status": "requires_action", "total": 100},
                                 {"subscription_id": 3, "plan": "premium"}, upgrade=upgrade)
    assert [(event.topic, dict(event.payload)) for event in transition.events] == [
        ("order.completed", {"order_id": 7, "status": "completed", "total": 100}),
        (topic, {"subscription_id": 3, "plan": "premium"}),
    ]


def test_open_and_closed_orders_are_every_status_but_completed() -> None:
    assert orders.OPEN | orders.CLOSED == set(OrderStatus) - {S.COMPLETED}
    assert not orders.OPEN & orders.CLOSED


def test_an_unknown_status_is_refused() -> None:
    with pytest.raises(ValueError):
        orders.decline("paid")


def test_an_active_subscription_expires_and_the_owner_hears_of_it() -> None:
    events = subscriptions.expire("active", {"subscription_id": 3, "plan": "premium"})
    assert [(e.topic, dict(e.payload)) for e in events] == [
        ("subscription.expired", {"subscription_id": 3, "plan": "premium"})]


@pytest.mark.parametrize("current", [SubscriptionStatus.EXPIRED, SubscriptionStatus.CANCELED])
def test_only_an_active_subscription_expires(current: SubscriptionStatus) -> None:
    with pytest.raises(Conflict) as refused:
        subscriptions.expire(current.value, {})
    assert refused.value.code == "invalid_subscription_transition"


def test_statuses_are_the_strings_stored_in_the_database() -> None:
    assert [s.value for s in OrderStatus] == ["pending", "requires_action", "completed", "failed",
                                              "canceled", "abandoned"]
    assert [s.value for s in SubscriptionStatus] == ["active", "expired", "canceled"]
