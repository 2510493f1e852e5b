"""The customer portal: what a namespace bought, and how its Owners and billing
managers manage it (cards, orders and receipts, automatic renewal).

Every number about a renewal comes from the renewal quote the reminders and
the charge use (`domain.renewal.renewal_quote` over `renewals.facts_of`), so the
Billing page, the API and the mails can not disagree. Every change is audited
(`billing_audit`: who, what, when) and tracked as a funnel step.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import func, select, union, update
from sqlalchemy.orm import Session

from contracts import events
from funnel.telemetry import Step
from identity.auth import Principal
from services.checkout.adapters.models import (
    BillingAccount,
    BillingAuditEntry,
    BillingManager,
    Membership,
    Namespace,
    Order,
    PaymentMethod,
    Renewal,
    ScheduledChange,
    Subscription,
)
from services.checkout.adapters.payments import PaymentObjectMissing, PaymentProviderUnavailable
from services.checkout.domain import portal as P
from services.checkout.domain import renewal as R
from services.checkout.domain import seats as S
from services.checkout.domain.orders import OrderStatus
from services.checkout.domain.subscriptions import SubscriptionStatus
from services.checkout.runtime import Checkout, UowFactory
from services.checkout.usecases import access, billing
from services.checkout.usecases import seats as seat_usage
from services.checkout.usecases.audit import audit, refunds_of
from services.checkout.usecases.renewals import NO_SUBSCRIPTION, Facts, facts_of
from services.checkout.usecases.views import card_view, order_view, subscription_view
from services.common.errors import NotFound, not_found
from services.common.service import ServiceUnitOfWork

NOTHING_BOUGHT = NotFound("nothing_bought", "Nothing bought yet",
                          "Nothing has been bought for this namespace yet, so it has no billing "
                          "account to manage. Buy a subscription on the checkout page first.")
# Orders a customer sees: what was charged or tried (open and abandoned attempts are not history).
HISTORY_STATUSES = (OrderStatus.COMPLETED, OrderStatus.FAILED)


def _active(session: Session, namespace_id: int) -> Subscription | None:
    return session.scalar(select(Subscription).where(Subscription.namespace_id == namespace_id,
                                                     Subscription.status == SubscriptionStatus.ACTIVE))


# --- subscriptions ---------------------------------------------------------------------
def _subscription_summary(app: Checkout, f: Facts, today: date, seen: seat_usage.Usage) -> dict[str, Any]:
    """A subscription as the Billing page shows it; the renewal is the reminders' quote,
    the seats are those the directory feed counted this term (usecases/seats.py)."""
    sub, rules, catalog = f.sub, app.renewal_rules, app.catalog
    quote = R.renewal_quote(catalog, f.term(), f.billable)
    opens = R.manual_renewal_opens(sub.term_end, rules)
    return {
        **subscription_view(sub),
        "plan_name": catalog.plan_name(sub.plan),
        "addons": [{"sku": sku, "name": _product_name(app, sku), "seats": seats}
                   for sku, seats in f.addons],
        "seats_detail": {"bought": sub.seats, "in_use": seen.in_use, "max_used": seen.max_used,
                         "owed": seen.owed},
        "seat_usage": [{"at": at.isoformat(), "seats_in_use": n}
                       for at, n in S.series(seen.holdings, seen.term_start)],
        "auto_renew_off_reason": sub.auto_renew_off_reason,
        "renewal": {**quote.snapshot(), "auto": sub.auto_renew},
        "ends_on": None if sub.auto_renew else sub.term_end.isoformat(),
        "grace_ends": R.grace_ends(sub.term_end, rules).isoformat(),
        "manual_renewal_from": opens.isoformat(),
        "can_renew_now": today >= opens,
        "days_left": max(0, (sub.term_end - today).days),
        "scheduled_change": None if f.change is None else {
            "seats": f.change.seats, "plan": f.change.plan, "drop_addons": list(f.change.drop_addons),
            "effective": f.change.renewal_date.isoformat()},
    }


def _product_name(app: Checkout, sku: str) -> str:
    catalog = app.catalog
    for items in (catalog.addons, catalog.packs):
        if sku in items:
            return str(items[sku].name)
    return sku.replace("_", " ").title()


def overview(app: Checkout, uow: ServiceUnitOfWork, principal: Principal,
             namespace_id: int) -> dict[str, Any]:
    """A namespace's billing as the caller may see it: members read the plan and the
    seat counts; Owners and billing managers also the card's state."""
    with uow:
        uow.telemetry_only()  # a look: its billing_viewed row may be written in a batch
        namespace, standing = access.load_for_billing(uow.session, namespace_id, principal)
        sub = _active(uow.session, namespace_id)
        today = uow.now.date()
        summary, card = None, None
        if sub is not None:
            f = facts_of(uow.session, [sub.id])[sub.id]
            summary = _subscription_summary(app, f, today, seat_usage.usage(uow.session, namespace))
            if f.card is not None:
                card = {**app.portal.card_marks(f.card.exp_month, f.card.exp_year, today, sub.term_end)}
                if standing.can_manage:
                    card.update(card_view(f.card))
        uow.track(Step.BILLING_VIEWED, user_id=principal.user_id, namespace_id=namespace_id,
                  manager=standing.can_manage)
        uow.commit()
        return {"namespace_id": namespace.id, "namespace_path": namespace.path,
                "namespace_name": namespace.name, "plan": namespace.plan,
                "plan_name": app.catalog.plan_name(namespace.plan), "role": standing.role,
                "billing_manager": standing.billing_manager, "can_manage": standing.can_manage,
                "subscription": summary, "card": card}


def my_subscriptions(app: Checkout, uow: ServiceUnitOfWork, principal: Principal) -> list[dict[str, Any]]:
    """Every active subscription of the namespaces the caller owns or manages the billing of."""
    with uow:
        mine = union(select(Membership.namespace_id).where(Membership.user_id == principal.user_id,
                                                           Membership.role == P.OWNER),
                     select(BillingManager.namespace_id).where(BillingManager.user_id == principal.user_id))
        rows = uow.session.execute(
            select(Subscription.id, Namespace).join(Namespace, Namespace.id == Subscription.namespace_id)
            .where(Subscription.status == SubscriptionStatus.ACTIVE, Subscription.namespace_id.in_(mine))
            .order_by(Namespace.path)).all()
        facts = facts_of(uow.session, [sub_id for sub_id, _ in rows])
        today = uow.now.date()
        return [{"namespace_id": ns.id, "namespace_path": ns.path, "namespace_name": ns.name,
                 **_subscription_summary(app, facts[sub_id], today, seat_usage.usage(uow.session, ns))}
                for sub_id, ns in rows]


def billing_namespaces(uow: ServiceUnitOfWork, principal: Principal) -> list[dict[str, Any]]:
    """Top-level namespaces the caller is a member of or manages the billing of, with the role."""
    with uow:
        roles = dict(uow.session.execute(select(Membership.namespace_id, Membership.role)
                                         .where(Membership.user_id == principal.user_id)).all())
        managed = set(uow.session.scalars(select(BillingManager.namespace_id)
                                          .where(BillingManager.user_id == principal.user_id)))
        namespaces = uow.session.scalars(select(Namespace).where(
            Namespace.id.in_(set(roles) | managed), Namespace.parent_id.is_(None)).order_by(Namespace.path))
        return [{"id": ns.id, "path": ns.path, "name": ns.name, "plan": ns.plan, "role": roles.get(ns.id),
                 "can_manage": roles.get(ns.id) == P.OWNER or ns.id in managed} for ns in namespaces]


# --- cards -----------------------------------------------------------------------------------
def paying_account(session: Session, namespace_id: int) -> BillingAccount:
    """The billing account that pays for the namespace: its active subscription's, else
    that of its latest subscription or completed order."""
    account_id = session.scalar(
        select(Subscription.billing_account_id).where(Subscription.namespace_id == namespace_id)
        .order_by((Subscription.status == SubscriptionStatus.ACTIVE).desc(), Subscription.id.desc())
        .limit(1)) or session.scalar(
        select(Order.billing_account_id).where(Order.namespace_id == namespace_id,
                                               Order.status == OrderStatus.COMPLETED)
        .order_by(Order.id.desc()).limit(1))
    account = session.get(BillingAccount, account_id) if account_id else None
    if account is None:
        raise NOTHING_BOUGHT
    return account


def _managed_account(principal: Principal, namespace_id: int) -> billing.AccountLoader:
    """The paying account, for an Owner or billing manager of the namespace."""
    def load(session: Session) -> BillingAccount:
        access.load_for_billing(session, namespace_id, principal, manage=True)
        return paying_account(session, namespace_id)
    return load


def _renewing(session: Session, account_id: int) -> list[str]:
    """The namespaces whose automatic renewal this account pays."""
    return list(session.scalars(
        select(Namespace.path).join(Subscription, Subscription.namespace_id == Namespace.id)
        .where(Subscription.billing_account_id == account_id, Subscription.auto_renew.is_(True),
               Subscription.status == SubscriptionStatus.ACTIVE).order_by(Namespace.path)))


def list_cards(app: Checkout, uow: ServiceUnitOfWork, principal: Principal,
               namespace_id: int) -> dict[str, Any]:
    with uow:
        account = _managed_account(principal, namespace_id)(uow.session)
        sub = _active(uow.session, namespace_id)
        renewal_date = sub.term_end if sub is not None and sub.auto_renew else None
        today = uow.now.date()
        return {"billing_account_id": account.id, "company": account.company, "email": account.email,
                "renewing": _renewing(uow.session, account.id),
                "cards": [{**card_view(c), **app.portal.card_marks(c.exp_month, c.exp_year, today,
                                                                    renewal_date)}
                          for c in account.cards]}


def start_card_setup(app: Checkout, new_uow: UowFactory, principal: Principal,
                     namespace_id: int) -> billing.CardSetup:
    return billing.start_card_setup(app, new_uow, principal, _managed_account(principal, namespace_id))


def add_card(app: Checkout, new_uow: UowFactory, principal: Principal, namespace_id: int,
             setup_intent_id: str, make_default: bool | None) -> PaymentMethod:
    card = billing.record_card(app, new_uow, principal, setup_intent_id, make_default,
                               _managed_account(principal, namespace_id), namespace_id)
    with new_uow() as uow:
        audit(uow, principal, "card_added", namespace_id=namespace_id, card_id=card.id,
              brand=card.brand, last4=card.last4, default=card.is_default)
        uow.commit()
    return card


def _account_card(session: Session, account: BillingAccount, card_id: int) -> PaymentMethod:
    card = session.get(PaymentMethod, card_id, with_for_update=True)
    if card is None or card.billing_account_id != account.id or card.removed_at is not None:
        raise not_found("card", card_id)
    return card


def make_default(uow: ServiceUnitOfWork, principal: Principal, namespace_id: int,
                 card_id: int) -> PaymentMethod:
    """The card renewals charge from now on."""
    with uow:
        account = _managed_account(principal, namespace_id)(uow.session)
        card = _account_card(uow.session, account, card_id)
        if not card.is_default:
            uow.session.execute(update(PaymentMethod).where(PaymentMethod.billing_account_id == account.id)
                                .values(is_default=False))
            card.is_default = True
            audit(uow, principal, "default_card_changed", namespace_id=namespace_id, card_id=card.id,
                  last4=card.last4)
            uow.track(Step.DEFAULT_CARD_CHANGED, user_id=principal.user_id, namespace_id=namespace_id)
        uow.commit()
        uow.session.refresh(card)
        uow.session.expunge(card)
        return card


def remove_card(app: Checkout, new_uow: UowFactory, principal: Principal, namespace_id: int,
                card_id: int) -> None:
    """Remove a card: marked removed first (so nothing charges it), then detached at
    Stripe; if Stripe can not be reached the removal is undone and says so."""
    with new_uow() as uow:
        account = _managed_account(principal, namespace_id)(uow.session)
        # The account's row lock: two removals can not each leave the other as the last card.
        uow.session.get(BillingAccount, account.id, with_for_update=True)
        card = _account_card(uow.session, account, card_id)
        P.check_card_removal(card.is_default, len(account.cards), _renewing(uow.session, account.id))
        card.removed_at, was_default, stripe_id = uow.now, card.is_default, card.stripe_payment_method_id
        card.is_default = False
        uow.commit()
    try:
        app.payments.detach_payment_method(stripe_id)
    except PaymentObjectMissing:
        pass  # Stripe has no such card any more: removed is removed
    except PaymentProviderUnavailable as exc:
        with new_uow() as uow:
            uow.session.execute(update(PaymentMethod).where(PaymentMethod.id == card_id)
                                .values(removed_at=None, is_default=was_default))
            uow.commit()
        raise billing.PROVIDER_DOWN from exc
    with new_uow() as uow:
        audit(uow, principal, "card_removed", namespace_id=namespace_id, card_id=card_id)
        uow.track(Step.CARD_REMOVED, user_id=principal.user_id, namespace_id=namespace_id,
                  was_default=was_default)
        uow.commit()


# --- orders and receipts ---------------------------------------------------------------------
def _history_line(order: Order) -> dict[str, Any]:
    return {**order_view(order),
            "description": "; ".join(str(line["description"]) for line in order.lines)}


def order_history(uow: ServiceUnitOfWork, principal: Principal, namespace_id: int) -> dict[str, Any]:
    """Every order charged or tried for the namespace, newest first, and its renewal charges."""
    with uow:
        access.load_for_billing(uow.session, namespace_id, principal, manage=True)
        orders = list(uow.session.scalars(select(Order).where(
            Order.namespace_id == namespace_id, Order.status.in_(HISTORY_STATUSES))
            .order_by(Order.created_at.desc(), Order.id.desc())))
        renewals = uow.session.scalars(
            select(Renewal).join(Subscription, Subscription.id == Renewal.subscription_id)
            .where(Subscription.namespace_id == namespace_id, Renewal.amount.is_not(None))
            .order_by(Renewal.renewal_date.desc()))
        refunds = refunds_of(uow, [o.id for o in orders])
        return {"orders": [{**_history_line(o), "refunds": refunds.get(o.id, [])} for o in orders],
                "renewals": [{"renewal_date": r.renewal_date.isoformat(), "status": r.status,
                              "amount": r.amount, "attempts": r.attempts, "manual": r.manual,
                              "failure": r.last_error, "changes": r.changes or []} for r in renewals]}


def receipt(uow: ServiceUnitOfWork, principal: Principal, namespace_id: int, order_id: int) -> dict[str, Any]:
    """What the receipt mail said about a completed order (order.completed's fields)."""
    with uow:
        namespace, _ = access.load_for_billing(uow.session, namespace_id, principal, manage=True)
        order = uow.session.get(Order, order_id)
        if order is None or order.namespace_id != namespace.id or order.status not in HISTORY_STATUSES:
            raise not_found("order", order_id)  # another namespace's order is not this one's
        account = uow.session.get(BillingAccount, order.billing_account_id)
        card = uow.session.get(PaymentMethod, order.payment_method_id) if order.payment_method_id else None
        return {**_history_line(order), "order_id": order.id, "namespace_path": namespace.path,
                "company": account.company if account else None,
                "card": {"brand": card.brand, "last4": card.last4, "exp_month": card.exp_month,
                         "exp_year": card.exp_year} if card else None}


# --- automatic renewal ------------------------------------------------------------------------
def set_auto_renew(app: Checkout, uow: ServiceUnitOfWork, principal: Principal, namespace_id: int,
                   enabled: bool, reason: str | None, comment: str | None) -> dict[str, Any]:
    """Off needs a reason (counted); on works until the term ends. Either way the
    billing contact gets a confirmation mail saying what happens at the term's end."""
    with uow:
        namespace, _ = access.load_for_billing(uow.session, namespace_id, principal, manage=True, lock=True)
        sub = _active(uow.session, namespace_id)
        if sub is None:
            raise NO_SUBSCRIPTION
        reason = app.portal.check_reason(enabled, reason)
        P.check_auto_renew_change(enabled, sub.term_end, uow.now.date())
        if sub.auto_renew != enabled:
            sub.auto_renew, sub.auto_renew_off_reason, sub.updated_at = enabled, reason, uow.now
            f = facts_of(uow.session, [sub.id])[sub.id]
            changed: events.AutoRenewChanged = {
                "subscription_id": sub.id, "namespace_id": namespace_id, "namespace_path": namespace.path,
                "email": f.account.email, "auto_renew": enabled, "by": principal.user_id,
                "plan": sub.plan, "term_end": sub.term_end.isoformat(),
                "grace_ends": R.grace_ends(sub.term_end, app.renewal_rules).isoformat(),
                "reason": reason, "reason_label": app.portal.auto_renew_off_reasons.get(reason or ""),
                "renewal_total": R.renewal_quote(app.catalog, f.term(), f.billable).total,
                "currency": app.catalog.currency, "billing_url": app.billing_url(namespace_id)}
            uow.publish("subscription.auto_renew_changed", changed)
            audit(uow, principal, "auto_renew_on" if enabled else "auto_renew_off", namespace_id=namespace_id,
                  subscription_id=sub.id, reason=reason, comment=comment)
            uow.track(Step.AUTO_RENEW_ON if enabled else Step.AUTO_RENEW_OFF, user_id=principal.user_id,
                      namespace_id=namespace_id, subscription_id=sub.id, plan=sub.plan, reason=reason)
        uow.commit()
        return {**subscription_view(sub), "auto_renew_off_reason": sub.auto_renew_off_reason,
                "ends_on": None if sub.auto_renew else sub.term_end.isoformat(),
                "grace_ends": R.grace_ends(sub.term_end, app.renewal_rules).isoformat(),
                "at_term_end": _at_term_end(app, namespace.path, sub)}


def _at_term_end(app: Checkout, path: str, sub: Subscription) -> str:
    grace = R.grace_ends(sub.term_end, app.renewal_rules)
    if sub.auto_renew:
        return (f"{path} renews automatically on {sub.term_end:%B %-d, %Y}, charging the default card "
                "at list price.")
    return (f"{path} does not renew. Paid features continue until {grace:%B %-d, %Y} "
            f"(the term ends {sub.term_end:%B %-d, %Y}, then {app.renewal_rules.grace_days} days of grace); "
            "then it returns to the Free plan. You can renew by hand until then, or turn automatic "
            "renewal back on before the term ends.")


# --- changes at the next renewal -------------------------------------------------------------
def schedule_change(app: Checkout, uow: ServiceUnitOfWork, principal: Principal, namespace_id: int,
                    seats: int | None, plan: str | None, drop_addons: list[str]) -> dict[str, Any]:
    """Fewer seats, a lower plan or add-ons dropped, from the next renewal on. It
    replaces any change scheduled before; the renewal quote (page, reminders,
    charge) shows it at once."""
    with uow:
        namespace, _ = access.load_for_billing(uow.session, namespace_id, principal, manage=True, lock=True)
        sub = _active(uow.session, namespace_id)
        if sub is None:
            raise NO_SUBSCRIPTION
        today = uow.now.date()
        P.check_auto_renew_change(True, sub.term_end, today)  # changes, like auto-renew, until the term ends
        f = facts_of(uow.session, [sub.id])[sub.id]
        change = R.ScheduledChange(seats, plan, tuple(sorted(set(drop_addons))))
        R.check_change(app.catalog, f.term(), f.billable, change)
        if f.change is not None:
            f.change.canceled_at = uow.now
            uow.session.flush()  # the open one is closed before its successor opens
        uow.session.add(ScheduledChange(
            subscription_id=sub.id, renewal_date=sub.term_end, seats=seats, plan=plan,
            drop_addons=list(change.drop_addons), created_by=principal.user_id, created_at=uow.now))
        audit(uow, principal, "change_scheduled", namespace_id=namespace_id, subscription_id=sub.id,
              seats=seats, plan=plan, drop_addons=list(change.drop_addons))
        uow.track(Step.CHANGE_SCHEDULED, user_id=principal.user_id, namespace_id=namespace_id,
                  seats=seats, plan=plan, drop_addons=list(change.drop_addons))
        uow.commit()
        return _subscription_summary(app, facts_of(uow.session, [sub.id])[sub.id], today,
                                     seat_usage.usage(uow.session, namespace))


def cancel_change(app: Checkout, uow: ServiceUnitOfWork, principal: Principal,
                  namespace_id: int) -> dict[str, Any]:
    with uow:
        namespace, _ = access.load_for_billing(uow.session, namespace_id, principal, manage=True, lock=True)
        sub = _active(uow.session, namespace_id)
        if sub is None:
            raise NO_SUBSCRIPTION
        f = facts_of(uow.session, [sub.id])[sub.id]
        if f.change is None:
            raise NotFound("no_scheduled_change", "Nothing scheduled",
                           "No change is scheduled for the next renewal.")
        f.change.canceled_at = uow.now
        audit(uow, principal, "scheduled_change_canceled", namespace_id=namespace_id, subscription_id=sub.id)
        uow.track(Step.SCHEDULED_CHANGE_CANCELED, user_id=principal.user_id, namespace_id=namespace_id)
        uow.commit()
        return _subscription_summary(app, facts_of(uow.session, [sub.id])[sub.id], uow.now.date(),
                                     seat_usage.usage(uow.session, namespace))


SAVE_OFFER_FLAG = "cancel-save-offer"


def save_offer(uow: ServiceUnitOfWork, principal: Principal, namespace_id: int) -> dict[str, Any] | None:
    """What the cancel flow may offer before automatic renewal goes off: the
    `cancel-save-offer` flag's value (an experiment hook; no offer by default)."""
    with uow:
        uow.telemetry_only()  # an offer shown, nothing changed (its exposure, if any, stays exact)
        namespace, _ = access.load_for_billing(uow.session, namespace_id, principal, manage=True)
        offer = uow.flag(SAVE_OFFER_FLAG, {"id": str(principal.user_id), "namespace_id": str(namespace_id),
                                           "plan": namespace.plan})
        if offer:
            uow.track(Step.SAVE_OFFER_SHOWN, user_id=principal.user_id, namespace_id=namespace_id)
        uow.commit()
        return offer if isinstance(offer, dict) else None


def auto_renew_reasons(app: Checkout, uow: ServiceUnitOfWork) -> list[dict[str, Any]]:
    """How often each reason was given for turning automatic renewal off (admins)."""
    with uow:
        counts = dict(uow.session.execute(
            select(BillingAuditEntry.reason, func.count()).where(BillingAuditEntry.action == "auto_renew_off")
            .group_by(BillingAuditEntry.reason)).all())
        return [{"reason": reason, "label": label, "count": counts.get(reason, 0)}
                for reason, label in app.portal.auto_renew_off_reasons.items()]
