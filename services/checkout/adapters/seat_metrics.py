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

    active = (select(Subscription.namespace_id, Subscription.seats, Subscription.term_start)
              .where(Subscription.status == SubscriptionStatus.ACTIVE).subquery())
    bought.set(session.scalar(select(func.coalesce(func.sum(active.c.seats), 0))) or 0)
    in_use.set(session.scalar(select(func.count()).select_from(SeatHolding).join(
        active, active.c.namespace_id == SeatHolding.namespace_id).where(SeatHolding.left_at.is_(None))) or 0)
    # Only a namespace with more holdings in its term than seats can owe any (the
    # max used counts no more than those): the exact max is worked out for those alone.
    in_term = or_(SeatHolding.left_at.is_(None), SeatHolding.left_at > active.c.term_start)
    candidates = {ns: (seats, start) for ns, seats, start in session.execute(
        select(active.c.namespace_id, active.c.seats, active.c.term_start)
        .join(SeatHolding, SeatHolding.namespace_id == active.c.namespace_id).where(in_term)
        .group_by(active.c.namespace_id, active.c.seats, active.c.term_start)
        .having(func.count() > active.c.seats))}
    held: dict[int, list[S.Holding]] = defaultdict(list)
    for ns, user, took, left in session.execute(
            select(SeatHolding.namespace_id, SeatHolding.user_id, SeatHolding.took_at, SeatHolding.left_at)
            .where(SeatHolding.namespace_id.in_(list(candidates)))):
        held[ns].append(S.Holding(user, took, left))
    owing = [S.seats_owed(max(S.max_used(held[ns], S.midnight(start)),
                              sum(1 for h in held[ns] if h.left_at is None)), seats)
             for ns, (seats, start) in candidates.items()]
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
