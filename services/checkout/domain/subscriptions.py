"""A subscription's life: active until its grace period after the term is over."""

from __future__ import annotations

from enum import StrEnum

from contracts.events import Event, SubscriptionExpired
from services.common.errors import Conflict


class SubscriptionStatus(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"  # the term and its grace period are over, unrenewed
    CANCELED = "canceled"


def expire(current: str, notice: SubscriptionExpired) -> list[Event]:
    """Only an active subscription expires; the owner hears of it."""
    status = SubscriptionStatus(current)
    if status is not SubscriptionStatus.ACTIVE:
        raise Conflict("invalid_subscription_transition", "Not possible in this state",
                       f"A subscription that is {status} can not expire.")
    return [Event("subscription.expired", notice)]
