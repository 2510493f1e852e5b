"""Quarterly seat reconciliation: at the end of each quarter of a term, Owners
hear of the seats used above those bought and what they will cost; seven days
later the subscription gains them and the card on file is charged pro rata for
the quarters left (domain/seats.py). Nothing in the fourth quarter: the renewal
trues up. A declined card follows the dunning days of data/renewal.toml.

Like the renewal sweeps: each quarter that closed is recorded once with
`INSERT ... SELECT ... ON CONFLICT DO NOTHING` (unique per subscription, term
and quarter), then worked through with `SKIP LOCKED` on PostgreSQL, one bad
item never blocking the rest (services/common/sweeps.py). A charge locks the
namespace and then the subscription, as a purchase does, and prices again from
what it finds: seats bought meanwhile (an add-seats purchase) lower it, a
renewal that came first ends it, so each seat is charged once.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import Select, literal, select
from sqlalchemy.orm import Session

from contracts import events
from identity.auth import Principal
from persistence.db import insert_ignoring_duplicates
from services.checkout.adapters.models import (
    BillingAccount,
    Membership,
    Namespace,
    PaymentMethod,
    SeatReconciliation,
    Subscription,
    User,
)
from services.checkout.adapters.payments import PaymentProviderUnavailable
from services.checkout.domain import renewal as R
from services.checkout.domain import seats as S
from services.checkout.domain.subscriptions import SubscriptionStatus
from services.checkout.runtime import Checkout, UowFactory
from services.checkout.usecases import seats
from services.checkout.usecases.billing import charge_off_session
from services.common.service import ServiceUnitOfWork
from services.common.sweeps import Sweep, clear

NOTICES, CHARGES = "reconciliation_notices", "reconciliation_charges"
BATCH = 1000


def owner_emails(session: Session, namespace_id: int) -> list[str]:
    return list(session.scalars(select(User.email).join(Membership, Membership.user_id == User.id).where(
        Membership.namespace_id == namespace_id, Membership.role == "owner").order_by(User.id)))


def _who(sub: Subscription, path: str, email: str, rec: SeatReconciliation) -> dict[str, Any]:
    return {"subscription_id": sub.id, "namespace_id": sub.namespace_id, "namespace_path": path,
            "email": email, "reconciliation_id": rec.id, "quarter": rec.quarter,
            "term_start": rec.term_start.isoformat(), "overage_seats": rec.overage_seats or 0,
            "max_seats_used": rec.max_seats_used or 0, "seats": sub.seats, "amount": rec.amount or 0,
            "currency": rec.currency or "usd"}


def _publish(uow: ServiceUnitOfWork, topic: str, sub: Subscription, rec: SeatReconciliation,
             **extra: Any) -> None:
    path = uow.session.get(Namespace, sub.namespace_id).path  # type: ignore[union-attr]
    for email in owner_emails(uow.session, sub.namespace_id):
        uow.publish(topic, {**_who(sub, path, email, rec), **extra})


def explain_seats(uow: ServiceUnitOfWork, sub: Subscription, path: str, send_on: date) -> None:
    """After a renewal, every Owner hears how seats are counted and billed (sent on `send_on`)."""
    for email in owner_emails(uow.session, sub.namespace_id):
        explained: events.SeatsExplained = {
            "subscription_id": sub.id, "namespace_id": sub.namespace_id, "namespace_path": path,
            "email": email, "term_start": sub.term_start.isoformat(), "term_end": sub.term_end.isoformat(),
            "seats": sub.seats, "send_on": send_on.isoformat()}
        uow.publish("subscription.seats_explained", explained)


# --- the quarter closes: record it, and tell the Owners --------------------------------
def record_closed_quarters(new_uow: UowFactory) -> None:
    """One row per subscription and closed quarter (1-3) of its current term, once."""
    with new_uow() as uow:
        today = uow.now.date()
        for quarter in range(1, S.QUARTERS):
            closed = select(Subscription.id, Subscription.term_start, literal(quarter), literal("due"),
                            literal(0), literal(uow.now), literal(uow.now)).where(
                Subscription.status == SubscriptionStatus.ACTIVE,
                Subscription.term_start <= S.starts_on_or_before(today, 3 * quarter))
            uow.session.execute(insert_ignoring_duplicates(uow.session, SeatReconciliation).from_select(
                ["subscription_id", "term_start", "quarter", "status", "attempts", "created_at",
                 "updated_at"],
                closed))
        uow.commit()


def _notify(app: Checkout, uow: ServiceUnitOfWork, ids: list[int]) -> list[str]:
    done = []
    recs = uow.session.scalars(select(SeatReconciliation).where(SeatReconciliation.id.in_(ids))
                               .order_by(SeatReconciliation.id)).all()
    for rec in recs:
        sub = uow.session.get(Subscription, rec.subscription_id)
        assert sub is not None
        rec.updated_at = uow.now
        if sub.term_start != rec.term_start or sub.status != SubscriptionStatus.ACTIVE:
            rec.status = "superseded"  # renewed or ended before the sweep came to it
            done.append(rec.status)
            continue
        settings = seats.settings_of(uow.session, sub.namespace_id)
        start = S.midnight(S.quarter_start(rec.term_start, rec.quarter))
        end = S.midnight(S.quarter_end(rec.term_start, rec.quarter))
        most = S.max_used(seats.holdings(uow.session, sub.namespace_id, start), start, end)
        result = S.reconcile(sub.seats, most, rec.quarter, app.catalog.plans[sub.plan].unit_amount)
        rec.max_seats_used, rec.seats_before, rec.overage_seats = most, sub.seats, result.overage_seats
        rec.amount, rec.currency = result.amount, app.catalog.currency
        if settings is not None and settings.reconciliation_excluded:
            rec.status = "excluded"
        elif result.overage_seats == 0:
            rec.status = "clear"
        else:
            rec.status = "noticed"
            rec.charge_on = _first_charge_on(app, rec)
            _publish(uow, "subscription.overage_notice", sub, rec, charge_on=rec.charge_on.isoformat())
        done.append(rec.status)
    return done


def _first_charge_on(app: Checkout, rec: SeatReconciliation) -> date:
    """Seven days after the notice: the quarter's end, or the day the quarter was
    recorded if the sweep came late (Owners always get the full week)."""
    noticed = max(S.quarter_end(rec.term_start, rec.quarter), rec.created_at.date())
    return noticed + timedelta(days=app.seat_rules.notice_to_charge_days)


# --- seven days later: add the seats and charge -------------------------------------------
def _charge(app: Checkout, uow: ServiceUnitOfWork, rec: SeatReconciliation) -> str:
    clear(uow, CHARGES, rec.id)
    base = uow.session.get(Subscription, rec.subscription_id)
    assert base is not None
    # The purchase lock order: namespace, then subscription.
    uow.session.get(Namespace, base.namespace_id, with_for_update=True)
    sub = uow.session.get(Subscription, rec.subscription_id, with_for_update=True, populate_existing=True)
    assert sub is not None
    rec.updated_at = uow.now
    if sub.status != SubscriptionStatus.ACTIVE or sub.term_start != rec.term_start:
        rec.status, rec.charge_on = "superseded", None  # the renewal trued up first
        return rec.status
    # Priced again from what is there now: seats bought since the notice are not charged twice.
    result = S.reconcile(sub.seats, rec.max_seats_used or 0, rec.quarter,
                         app.catalog.plans[sub.plan].unit_amount)
    if result.overage_seats == 0:
        rec.status, rec.charge_on, rec.amount = "covered", None, 0
        return rec.status
    rec.overage_seats, rec.amount, rec.seats_before = result.overage_seats, result.amount, sub.seats
    rec.attempts += 1
    account = uow.session.get(BillingAccount, sub.billing_account_id)
    assert account is not None
    card = uow.session.scalar(select(PaymentMethod).where(
        PaymentMethod.billing_account_id == account.id, PaymentMethod.is_default.is_(True)))
    path = uow.session.get(Namespace, sub.namespace_id).path  # type: ignore[union-attr]
    charged = charge_off_session(app, account, card, result.amount, app.catalog.currency,
                                 f"seat-reconciliation-{rec.id}-{rec.attempts}",
                                 f"Seats used above those bought in quarter {rec.quarter}: {path}",
                                 {"seat_reconciliation_id": str(rec.id)})
    rec.payment_intent_id = charged.payment_intent_id
    if charged.status == "succeeded":
        sub.seats, sub.updated_at = result.seats_after, uow.now
        rec.status, rec.charge_on, rec.last_error = "charged", None, None
        _publish(uow, "subscription.seats_reconciled", sub, rec, seats_before=result.seats_before)
        return rec.status
    retry = R.next_retry(_first_charge_on(app, rec), uow.now.date(), app.renewal_rules)
    rec.status = "failed" if retry is None else "retrying"
    rec.charge_on = retry
    rec.last_error = f"{charged.decline_code or charged.status}: {charged.message or ''}"[:500]
    _publish(uow, "subscription.reconciliation_failed", sub, rec, attempt=rec.attempts, final=retry is None,
             next_attempt_at=retry.isoformat() if retry else None, reason=charged.decline_code,
             update_card_url=f"{app.ctx.settings.service_urls['checkout']}/billing-account")
    return "failed"


def run(app: Checkout, new_uow: UowFactory) -> dict[str, int]:
    """One pass: record the quarters that closed, notify, charge what is due."""
    record_closed_quarters(new_uow)
    noticed = Sweep(NOTICES,
                    lambda uow: select(SeatReconciliation.id).where(SeatReconciliation.status == "due"),
                    lambda uow, ids: _notify(app, uow, ids), batch=BATCH).run(new_uow)

    def due(uow: ServiceUnitOfWork) -> Select[Any]:
        return select(SeatReconciliation.id).where(SeatReconciliation.status.in_(("noticed", "retrying")),
                                                   SeatReconciliation.charge_on <= uow.now.date())

    def charge(uow: ServiceUnitOfWork, ids: list[int]) -> list[str]:
        recs = uow.session.scalars(select(SeatReconciliation).where(SeatReconciliation.id.in_(ids)))
        return [_charge(app, uow, rec) for rec in recs]

    # One per transaction: the row stays locked across the Stripe call, so no
    # other worker charges it too.
    charged = Sweep(CHARGES, due, charge, batch=1, outages=(PaymentProviderUnavailable,),
                    give_up_after=timedelta(hours=app.renewal_rules.charge_error_retry_hours)).run(new_uow)
    return {"overage_notices": noticed.count("noticed"), "reconciled": charged.count("charged"),
            "reconciliation_failures": charged.count("failed")}


# --- what people see ----------------------------------------------------------------------
def history(uow: ServiceUnitOfWork, principal: Principal, namespace_id: int) -> list[dict[str, Any]]:
    with uow:
        seats.readable(uow.session, namespace_id, principal)
        rows = uow.session.scalars(select(SeatReconciliation).join(
            Subscription, Subscription.id == SeatReconciliation.subscription_id).where(
            Subscription.namespace_id == namespace_id).order_by(SeatReconciliation.id)).all()
        return [{"id": r.id, "subscription_id": r.subscription_id, "term_start": r.term_start.isoformat(),
                 "quarter": r.quarter, "status": r.status, "max_seats_used": r.max_seats_used,
                 "seats_before": r.seats_before, "overage_seats": r.overage_seats, "amount": r.amount,
                 "currency": r.currency, "charge_on": r.charge_on.isoformat() if r.charge_on else None,
                 "attempts": r.attempts, "payment_intent_id": r.payment_intent_id} for r in rows]
