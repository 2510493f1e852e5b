"""Seat utilization across every paid namespace, read from checkout's tables
at each scrape (like the outbox lag): every replica reports the same truth."""

from __future__ import annotations

from collections import defaultdict

from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from services.checkout.adapters.models import DuoAssignment, SeatHolding, Subscription, SubscriptionAddOn
from services.checkout.domain import seats as S
from services.checkout.domain.subscriptions import SubscriptionStatus


def seat_gauges(session: Session, registry: CollectorRegistry) -> None:
    bought = Gauge("seats_bought", "Seats bought by active subscriptions", registry=registry)
    in_use = Gauge("seats_in_use", "Billable members of namespaces with an active subscription",
                   registry=registry)
    owed = Gauge("seats_owed", "Seats used above those bought this term, summed over namespaces",
                 registry=registry)
    over = Gauge("namespaces_over_seats", "Namespaces that owe seats this term", registry=registry)
    duo_bought = Gauge("duo_seats_purchased", "Duo seats bought", ["sku"], registry=registry)
    duo_assigned = Gauge("duo_seats_assigned", "Duo seats assigned to members", ["sku"], registry=registry)

    subs = {ns: (seats, start) for ns, seats, start in session.execute(
        select(Subscription.namespace_id, Subscription.seats, Subscription.term_start)
        .where(Subscription.status == SubscriptionStatus.ACTIVE))}
    held: dict[int, list[S.Holding]] = defaultdict(list)
    oldest = min((start for _, start in subs.values()), default=None)
    if oldest is not None:
        for ns, user, took, left in session.execute(
                select(SeatHolding.namespace_id, SeatHolding.user_id, SeatHolding.took_at,
                       SeatHolding.left_at)
                .where(SeatHolding.namespace_id.in_(list(subs)),
                       or_(SeatHolding.left_at.is_(None), SeatHolding.left_at > S.midnight(oldest)))):
            held[ns].append(S.Holding(user, took, left))
    owing = [S.seats_owed(max(S.max_used(held[ns], S.midnight(start)),
                              sum(1 for h in held[ns] if h.left_at is None)), seats)
             for ns, (seats, start) in subs.items()]
    bought.set(sum(seats for seats, _ in subs.values()))
    in_use.set(sum(1 for rows in held.values() for h in rows if h.left_at is None))
    owed.set(sum(owing))
    over.set(sum(1 for n in owing if n > 0))
    for sku, count in session.execute(
            select(SubscriptionAddOn.sku, func.sum(SubscriptionAddOn.seats))
            .join(Subscription, Subscription.id == SubscriptionAddOn.subscription_id)
            .where(Subscription.status == SubscriptionStatus.ACTIVE, SubscriptionAddOn.sku.startswith("duo_"))
            .group_by(SubscriptionAddOn.sku)):
        duo_bought.labels(sku).set(count or 0)
    for sku, count in session.execute(select(DuoAssignment.sku, func.count()).group_by(DuoAssignment.sku)):
        duo_assigned.labels(sku).set(count)
