"""The renewal engine: reminders, auto-renewal charges with dunning, manual
renewal, and expiry after the grace period.

Sweeps are set-based: each first records what is due with one
`INSERT ... SELECT ... ON CONFLICT DO NOTHING` (a unique constraint makes a
second or parallel run a no-op), then works through the recorded rows in
batches with `FOR UPDATE SKIP LOCKED` on PostgreSQL. The work per row is a
constant number of statements per batch, so a sweep's cost grows linearly.
One bad row never blocks the rest (services/common/sweeps.py): a batch that
fails is redone a row at a time, and the row that fails is recorded with its
reason and retried alone after a backoff. A card the bank declines, or one
Stripe no longer knows, is not such a failure: it takes the dunning path.

The reminder and the charge price the renewal with the same domain function
(`domain.renewal.renewal_quote`); the charge keeps what changed since the last
reminder, so a receipt can say it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Select, func, literal, select
from sqlalchemy.orm import Session

from contracts import events
from funnel.telemetry import Step
from identity.auth import Principal
from persistence.db import insert_ignoring_duplicates
from services.checkout.adapters.models import (
    BillingAccount,
    Membership,
    Namespace,
    Order,
    PaymentMethod,
    Renewal,
    RenewalNotice,
    ScheduledChange,
    Subscription,
    SubscriptionAddOn,
)
from services.checkout.adapters.payments import (
    ChargeResult,
    PaymentProviderUnavailable,
)
from services.checkout.domain import renewal as R
from services.checkout.domain import subscriptions
from services.checkout.domain.orders import OrderStatus
from services.checkout.domain.subscriptions import SubscriptionStatus
from services.checkout.runtime import Checkout, UowFactory
from services.checkout.usecases import access, duo, reconciliation, seats
from services.checkout.usecases.audit import audit
from services.checkout.usecases.billing import PROVIDER_DOWN, charge_off_session
from services.checkout.usecases.views import subscription_view
from services.common.errors import Conflict, NotFound, PaymentFailed
from services.common.service import ServiceUnitOfWork
from services.common.sweeps import Sweep, clear

BATCH = 1000
# The sweeps' names in sweep_failures, the logs and /metrics.
REMINDERS, CHARGES = "renewal_reminders", "renewal_charges"
EXPIRY, CARD_NOTICES = "subscription_expiry", "card_expiry_notices"
NO_SUBSCRIPTION = NotFound("no_subscription", "No subscription",
                           "This namespace has no active subscription.")


@dataclass(frozen=True)
class Facts:
    """What a renewal needs to know about one subscription, read in bulk."""

    sub: Subscription
    path: str
    account: BillingAccount
    card: PaymentMethod | None
    billable: int
    addons: tuple[tuple[str, int], ...]
    change: ScheduledChange | None = None  # scheduled for this term's renewal

    def term(self) -> R.Term:
        scheduled = None if self.change is None else R.ScheduledChange(
            self.change.seats, self.change.plan, tuple(self.change.drop_addons))
        return term_of(self.sub, self.addons, scheduled)


def term_of(sub: Subscription, addons: tuple[tuple[str, int], ...] | None = None,
            change: R.ScheduledChange | None = None) -> R.Term:
    """What a renewal of `sub` renews: plan, seats, add-ons (loaded in bulk, or its own),
    storage, and the change scheduled for it."""
    held = addons if addons is not None else tuple(sorted((a.sku, a.seats) for a in sub.addons))
    return R.Term(sub.plan, sub.seats, held, sub.term_start, sub.term_end, sub.storage_packs, change)


def facts_of(session: Session, subscription_ids: list[int]) -> dict[int, Facts]:
    """Everything for a batch of subscriptions in five queries (no N+1)."""
    if not subscription_ids:
        return {}
    in_batch = select(Subscription.namespace_id).where(Subscription.id.in_(subscription_ids))
    billable = (select(Membership.namespace_id, func.count().label("n"))
                .where(Membership.billable.is_(True), Membership.namespace_id.in_(in_batch))
                .group_by(Membership.namespace_id).subquery())
    rows = session.execute(
        select(Subscription, Namespace.path, BillingAccount, func.coalesce(billable.c.n, 0))
        .join(Namespace, Namespace.id == Subscription.namespace_id)
        .join(BillingAccount, BillingAccount.id == Subscription.billing_account_id)
        .outerjoin(billable, billable.c.namespace_id == Subscription.namespace_id)
        .where(Subscription.id.in_(subscription_ids))).all()
    accounts = {account.id for _, _, account, _ in rows}
    cards = {pm.billing_account_id: pm for pm in session.scalars(select(PaymentMethod).where(
        PaymentMethod.billing_account_id.in_(accounts), PaymentMethod.is_default.is_(True)))}
    addons: dict[int, list[tuple[str, int]]] = {}
    for a in session.scalars(select(SubscriptionAddOn).where(
            SubscriptionAddOn.subscription_id.in_(subscription_ids))):
        addons.setdefault(a.subscription_id, []).append((a.sku, a.seats))
    changes = {c.subscription_id: c for c in session.scalars(select(ScheduledChange).where(
        ScheduledChange.subscription_id.in_(subscription_ids), ScheduledChange.applied_at.is_(None),
        ScheduledChange.canceled_at.is_(None)))}
    return {sub.id: Facts(sub, path, account, cards.get(account.id), int(n),
                          tuple(sorted(addons.get(sub.id, ()))),
                          _for_this_term(changes.get(sub.id), sub))
            for sub, path, account, n in rows}


def _for_this_term(change: ScheduledChange | None, sub: Subscription) -> ScheduledChange | None:
    return change if change is not None and change.renewal_date == sub.term_end else None


# What a member who is not an Owner sees of the card on file.
CARD_STATUS_FIELDS = ("expired", "expires_before_renewal")


def _card(facts: Facts, today: date, renewal_date: date) -> dict[str, Any] | None:
    card = facts.card
    if card is None:
        return None
    return {"brand": card.brand, "last4": card.last4, "exp_month": card.exp_month,
            "exp_year": card.exp_year, **R.card_flags(card.exp_month, card.exp_year, today, renewal_date)}


def _who(facts: Facts) -> dict[str, Any]:
    return {"subscription_id": facts.sub.id, "namespace_id": facts.sub.namespace_id,
            "namespace_path": facts.path, "email": facts.account.email, "company": facts.account.company,
            "billing_account_id": facts.account.id}


# --- reminders -------------------------------------------------------------------
def announce_renewals(app: Checkout, new_uow: UowFactory, rules: R.RenewalRules) -> int:
    """Record and announce every reminder due today (`RenewalRules.windows`:
    a late one still goes, saying the days left, until the next is due);
    returns how many."""
    with new_uow() as uow:
        today = uow.now.date()
        for auto_renew in (True, False):
            for d, lower in rules.windows(auto_renew):
                due = select(
                    Subscription.id, Subscription.term_end, literal(d), literal(uow.now)).where(
                    Subscription.status == SubscriptionStatus.ACTIVE, Subscription.auto_renew.is_(auto_renew),
                    Subscription.term_end > today + timedelta(days=lower),
                    Subscription.term_end <= today + timedelta(days=d))
                uow.session.execute(insert_ignoring_duplicates(uow.session, RenewalNotice).from_select(
                    ["subscription_id", "renewal_date", "days_before", "created_at"], due))
        uow.commit()
    pending = Sweep(REMINDERS, lambda uow: select(RenewalNotice.id).where(RenewalNotice.quote.is_(None)),
                    lambda uow, ids: _announce(app, uow, ids, rules), batch=BATCH)
    return len(pending.run(new_uow))


def _announce(app: Checkout, uow: ServiceUnitOfWork, ids: list[int], rules: R.RenewalRules) -> list[int]:
    notices = uow.session.scalars(select(RenewalNotice).where(RenewalNotice.id.in_(ids))
                                  .order_by(RenewalNotice.id)).all()
    facts = facts_of(uow.session, [n.subscription_id for n in notices])
    today = uow.now.date()
    for notice in notices:
        f = facts[notice.subscription_id]
        quote = R.renewal_quote(app.catalog, f.term(), f.billable)
        notice.quote = quote.snapshot()
        upcoming: events.RenewalUpcoming = {
            **_who(f), "renewal_date": notice.renewal_date.isoformat(), "days_before": notice.days_before,
            # the mail is skipped if still unsent once the next notice is due
            "next_days_before": rules.next_notice(notice.days_before, f.sub.auto_renew),
            "auto_renew": f.sub.auto_renew, "plan": f.sub.plan, "quote": notice.quote,
            "card": _card(f, today, notice.renewal_date)}
        uow.publish("subscription.renewal_upcoming", upcoming)
    return [n.id for n in notices]


def announce_expiring_cards(new_uow: UowFactory) -> int:
    """Tell owners, once, that their default card expires this month."""
    def expiring(uow: ServiceUnitOfWork) -> Select[Any]:
        today = uow.now.date()
        return select(PaymentMethod.id).where(
            PaymentMethod.is_default.is_(True), PaymentMethod.exp_year == today.year,
            PaymentMethod.exp_month == today.month,
            PaymentMethod.expiry_notice_for.is_distinct_from(_month(today)))
    return len(Sweep(CARD_NOTICES, expiring, _announce_cards, batch=BATCH).run(new_uow))


def _announce_cards(uow: ServiceUnitOfWork, ids: list[int]) -> list[int]:
    cards = uow.session.execute(select(PaymentMethod, BillingAccount).join(BillingAccount)
                                .where(PaymentMethod.id.in_(ids)).order_by(PaymentMethod.id)).all()
    for card, account in cards:
        card.expiry_notice_for = _month(uow.now.date())
        expiring: events.CardExpiring = {"billing_account_id": account.id, "email": account.email,
                                         "brand": card.brand, "last4": card.last4,
                                         "exp_month": card.exp_month, "exp_year": card.exp_year}
        uow.publish("card.expiring", expiring)
    return [card.id for card, _ in cards]


def _month(day: date) -> str:
    return f"{day.year}-{day.month:02d}"


# --- charges -------------------------------------------------------------------------
def charge_due(app: Checkout, new_uow: UowFactory, rules: R.RenewalRules) -> tuple[int, int]:
    """Auto-renew every subscription whose renewal date has come, retrying
    failed cards on the dunning days. Returns (renewed, failed attempts)."""
    with new_uow() as uow:
        today = uow.now.date()
        arrived = select(Subscription.id, Subscription.term_end, literal("due"), literal(0),
                         Subscription.term_end, literal(uow.now), literal(uow.now), literal(False)).where(
            Subscription.status == SubscriptionStatus.ACTIVE, Subscription.auto_renew.is_(True),
            Subscription.term_end <= today)
        uow.session.execute(insert_ignoring_duplicates(uow.session, Renewal).from_select(
            ["subscription_id", "renewal_date", "status", "attempts", "next_attempt_on", "created_at",
             "updated_at", "manual"], arrived))
        uow.commit()
    def due(uow: ServiceUnitOfWork) -> Select[Any]:
        return select(Renewal.id).where(Renewal.status.in_(("due", "retrying")),
                                        Renewal.next_attempt_on <= uow.now.date())

    def charge(uow: ServiceUnitOfWork, ids: list[int]) -> list[str]:
        renewals = uow.session.scalars(select(Renewal).where(Renewal.id.in_(ids)).order_by(Renewal.id))
        return [_charge(app, uow, renewal, rules) for renewal in renewals]

    # One renewal per transaction: its row stays locked across the Stripe call so
    # no other worker charges it too. Stripe down ends the pass (the next would
    # fail alike); the renewal stays due and is tried again after the backoff.
    # An error is retried on the same idempotency key, which Stripe keeps for a
    # day: past `charge_error_retry_hours` the renewal waits for a person.
    outcomes = Sweep(CHARGES, due, charge, batch=1, outages=(PaymentProviderUnavailable,),
                     give_up_after=timedelta(hours=rules.charge_error_retry_hours)).run(new_uow)
    return outcomes.count("renewed"), outcomes.count("failed")


def _charge(app: Checkout, uow: ServiceUnitOfWork, renewal: Renewal, rules: R.RenewalRules) -> str:
    clear(uow, CHARGES, renewal.id)  # whatever this attempt ends in, a manual renewal's too, is no error
    if renewal.status == "succeeded":
        # Renewed while the caller waited for this row's lock (the sweep, or another
        # click): the subscription it read may be from before; never charge again.
        return "skipped"
    # Locks in one order everywhere: renewal row, namespace, subscription (settlement
    # takes namespace, order, subscription; reconciliation namespace, subscription).
    # The subscription's lock orders this renewal with an expansion settling at the
    # same moment: one waits for the other and then prices what the other left. The
    # namespace's comes first because a scheduled plan change writes it.
    owner = select(Subscription.namespace_id).where(Subscription.id == renewal.subscription_id)
    uow.session.execute(select(Namespace.id).where(Namespace.id == owner.scalar_subquery()).with_for_update())
    uow.session.execute(select(Subscription.id).where(Subscription.id == renewal.subscription_id)
                        .with_for_update())
    f = facts_of(uow.session, [renewal.subscription_id])[renewal.subscription_id]
    uow.session.refresh(f.sub)
    if f.sub.status != SubscriptionStatus.ACTIVE or f.sub.term_end != renewal.renewal_date:
        renewal.status, renewal.next_attempt_on = "succeeded", None  # renewed by hand meanwhile
        return "skipped"
    quote = R.renewal_quote(app.catalog, f.term(), f.billable)
    renewal.attempts += 1
    result = charge_off_session(
        app, f.account, f.card, quote.total, quote.currency,
        f"renewal-{f.sub.id}-{renewal.renewal_date.isoformat()}-{renewal.attempts}",
        f"Renewal of {f.path}", {"renewal_id": str(renewal.id)})
    renewal.updated_at = uow.now
    if result.status == "succeeded":
        _renewed(uow, renewal, f, quote, result.payment_intent_id)
        reconciliation.explain_seats(uow, f.sub, f.path, renewal.renewal_date + timedelta(
            days=app.seat_rules.explain_after_renewal_days))
        for sku, _ in f.addons:  # add-on seats may have been lowered to the plan's
            duo.cut_back(uow, f.sub.namespace_id, sku, f"renewal-{f.sub.id}-{renewal.renewal_date}")
        return "renewed"
    _failed(app, uow, renewal, f, quote, result, rules)
    return "failed"


def _stated_quote(session: Session, renewal: Renewal) -> dict[str, Any] | None:
    """The renewal's price as the owner was last told it: the last reminder's quote,
    or an expansion's receipt after it (it states the renewal's new price)."""
    return last_statement(session, renewal.subscription_id, renewal.renewal_date)


def last_statement(session: Session, subscription_id: int, renewal_date: date) -> dict[str, Any] | None:
    notice = session.execute(select(RenewalNotice.quote, RenewalNotice.created_at).where(
        RenewalNotice.subscription_id == subscription_id,
        RenewalNotice.renewal_date == renewal_date, RenewalNotice.quote.is_not(None))
        .order_by(RenewalNotice.days_before).limit(1)).first()
    receipt = session.execute(select(Order.renewal_quote, Order.completed_at).where(
        Order.subscription_id == subscription_id, Order.kind == "expansion", Order.term_end == renewal_date,
        Order.status == OrderStatus.COMPLETED, Order.renewal_quote.is_not(None))
        .order_by(Order.completed_at.desc(), Order.id.desc()).limit(1)).first()
    statements = [s for s in (notice, receipt) if s is not None]
    return max(statements, key=lambda s: s[1])[0] if statements else None


def _renewed(uow: ServiceUnitOfWork, renewal: Renewal, f: Facts, quote: R.RenewalQuote,
             intent_id: str | None) -> None:
    changes = R.changes_between(_stated_quote(uow.session, renewal), quote)
    sub = f.sub
    sub.term_start, sub.term_end, sub.seats = quote.renewal_date, quote.new_term_end, quote.seats
    sub.updated_at = uow.now
    held = select(SubscriptionAddOn).where(SubscriptionAddOn.subscription_id == sub.id)
    for addon in uow.session.scalars(held):
        if addon.sku in quote.dropped_addons:
            uow.session.delete(addon)
        addon.seats = min(addon.seats, quote.seats)
    if f.change is not None:  # the scheduled change is what this renewal bought
        f.change.applied_at = uow.now
        if sub.plan != quote.plan:
            sub.plan = quote.plan
            namespace = uow.session.get(Namespace, sub.namespace_id)
            assert namespace is not None
            namespace.plan = quote.plan
            seats.reprice(uow.session, namespace, uow.now)  # Guests take a seat below Ultimate
    renewal.status, renewal.next_attempt_on = "succeeded", None
    renewal.amount, renewal.quote, renewal.changes = quote.total, quote.snapshot(), changes
    renewal.payment_intent_id, renewal.last_error = intent_id, None
    renewed: events.SubscriptionRenewed = {
        **_who(f), **subscription_view(sub), "amount": quote.total, "currency": quote.currency,
        "renewal_date": renewal.renewal_date.isoformat(), "changes": changes, "quote": quote.snapshot(),
        "manual": renewal.manual, "changed_at": uow.now.isoformat()}
    uow.publish("subscription.renewed", renewed)


def _failed(app: Checkout, uow: ServiceUnitOfWork, renewal: Renewal, f: Facts, quote: R.RenewalQuote,
            result: ChargeResult, rules: R.RenewalRules) -> None:
    retry = R.next_retry(renewal.renewal_date, uow.now.date(), rules)
    renewal.status = "failed" if retry is None else "retrying"
    renewal.next_attempt_on = retry
    renewal.amount, renewal.payment_intent_id = quote.total, result.payment_intent_id
    renewal.changes = R.changes_between(_stated_quote(uow.session, renewal), quote)
    renewal.last_error = f"{result.decline_code or result.status}: {result.message or ''}"[:500]
    failed: events.RenewalFailed = {
        **_who(f), "renewal_date": renewal.renewal_date.isoformat(), "amount": quote.total,
        "currency": quote.currency, "attempt": renewal.attempts, "final": retry is None,
        "next_attempt_at": retry.isoformat() if retry else None, "reason": result.decline_code,
        "grace_ends": R.grace_ends(renewal.renewal_date, rules).isoformat(), "manual": renewal.manual,
        "changes": renewal.changes,
        "update_card_url": app.billing_url(f.sub.namespace_id)}
    uow.publish("subscription.renewal_failed", failed)


# --- expiry ----------------------------------------------------------------------------
def expire_lapsed(new_uow: UowFactory, rules: R.RenewalRules) -> int:
    """End every subscription whose grace period is over, once; the namespace goes back to Free."""
    def lapsed(uow: ServiceUnitOfWork) -> Select[Any]:
        cutoff = uow.now.date() - timedelta(days=rules.grace_days)
        return select(Subscription.id).where(Subscription.status == SubscriptionStatus.ACTIVE,
                                             Subscription.term_end <= cutoff)
    return len(Sweep(EXPIRY, lapsed, _expire, batch=BATCH).run(new_uow))


def _expire(uow: ServiceUnitOfWork, ids: list[int]) -> list[int]:
    # Locked and re-read: a subscription renewed or expired meanwhile is skipped.
    ended = uow.session.scalars(
        select(Subscription.id).where(Subscription.id.in_(ids),
                                      Subscription.status == SubscriptionStatus.ACTIVE)
        .with_for_update()).all()
    facts = facts_of(uow.session, list(ended))
    for f in facts.values():
        notice: events.SubscriptionExpired = {**_who(f), "plan": f.sub.plan,
                                              "term_end": f.sub.term_end.isoformat(),
                                              "changed_at": uow.now.isoformat()}
        for event in subscriptions.expire(f.sub.status, notice):
            uow.publish(event.topic, dict(event.payload))
        f.sub.status, f.sub.updated_at = SubscriptionStatus.EXPIRED, uow.now
        namespace = uow.session.get(Namespace, f.sub.namespace_id)
        assert namespace is not None
        namespace.plan = "free"
        seats.reprice(uow.session, namespace, uow.now)
        for sku, _ in f.addons:  # the add-ons ended with it
            duo.cut_back(uow, namespace.id, sku, f"expired-{f.sub.id}-{f.sub.term_end}")
    return list(ended)


# --- what Owners and billing managers do ------------------------------------------------
def _owned_subscription(uow: ServiceUnitOfWork, principal: Principal, namespace_id: int) -> Subscription:
    # No namespace lock here: renew now takes the renewal row first, as the sweep does.
    access.load_for_billing(uow.session, namespace_id, principal, manage=True)
    sub = uow.session.scalar(select(Subscription).where(Subscription.namespace_id == namespace_id,
                                                        Subscription.status == SubscriptionStatus.ACTIVE))
    if sub is None:
        raise NO_SUBSCRIPTION
    return sub


def preview(app: Checkout, uow: ServiceUnitOfWork, principal: Principal, namespace_id: int,
            rules: R.RenewalRules) -> dict[str, Any]:
    """What the next renewal will cost and when the owner hears of it."""
    with uow:
        _, standing = access.load_for_billing(uow.session, namespace_id, principal)
        sub = uow.session.scalar(select(Subscription).where(Subscription.namespace_id == namespace_id,
                                                            Subscription.status == SubscriptionStatus.ACTIVE))
        if sub is None:
            raise NO_SUBSCRIPTION
        f = facts_of(uow.session, [sub.id])[sub.id]
        quote = R.renewal_quote(app.catalog, f.term(), f.billable)
        today = uow.now.date()
        card = _card(f, today, sub.term_end)
        if card is not None and not standing.can_manage:
            # Members may know the renewal is safe, not which card pays for it.
            card = {k: card[k] for k in CARD_STATUS_FIELDS}
        return {"subscription": subscription_view(sub), "quote": quote.snapshot(),
                "reminders": [(sub.term_end - timedelta(days=d)).isoformat()
                              for d in rules.notices(sub.auto_renew)],
                "manual_renewal_from": R.manual_renewal_opens(sub.term_end, rules).isoformat(),
                "grace_ends": R.grace_ends(sub.term_end, rules).isoformat(),
                "card": card}


def renew_now(app: Checkout, new_uow: UowFactory, principal: Principal, namespace_id: int,
              rules: R.RenewalRules) -> dict[str, Any]:
    """Manual renewal, from 30 days before the end (and through the grace period)."""
    with new_uow() as uow:
        sub = _owned_subscription(uow, principal, namespace_id)
        today = uow.now.date()
        if today < R.manual_renewal_opens(sub.term_end, rules):
            raise Conflict("renewal_not_open", "Too early to renew",
                           f"You can renew from {R.manual_renewal_opens(sub.term_end, rules):%B %-d, %Y}.")
        # Two clicks, or a click and the sweep, may create the row at once: one insert wins.
        uow.session.execute(insert_ignoring_duplicates(uow.session, Renewal).values(
            subscription_id=sub.id, renewal_date=sub.term_end, status="due", attempts=0,
            next_attempt_on=sub.term_end, manual=True, created_at=uow.now, updated_at=uow.now))
        renewal = uow.session.scalars(select(Renewal).where(
            Renewal.subscription_id == sub.id, Renewal.renewal_date == sub.term_end)
            .with_for_update().execution_options(populate_existing=True)).one()
        if renewal.status == "succeeded":
            raise Conflict("already_renewed", "Already renewed",
                           "This term was renewed meanwhile; nothing more was charged.")
        renewal.manual = True
        try:
            outcome = _charge(app, uow, renewal, rules)
        except PaymentProviderUnavailable as exc:
            raise PROVIDER_DOWN from exc
        if outcome == "renewed":
            audit(uow, principal, "renewed_now", namespace_id=namespace_id, subscription_id=sub.id,
                  amount=renewal.amount)
            uow.track(Step.RENEWED_NOW, user_id=principal.user_id, namespace_id=namespace_id,
                      amount=renewal.amount)
        uow.commit()
        if outcome == "failed":
            raise PaymentFailed("card_declined", "Card declined",
                                f"The renewal charge failed ({renewal.last_error}). "
                                "Update your card and try again.")
        return {"renewal_date": renewal.renewal_date.isoformat(), "amount": renewal.amount,
                "changes": renewal.changes or [], "subscription": subscription_view(sub)}


def run_all(app: Checkout, new_uow: UowFactory, rules: R.RenewalRules) -> dict[str, int]:
    """One pass of every renewal sweep, in the order a day unfolds."""
    renewed, failed = charge_due(app, new_uow, rules)
    return {"reminders": announce_renewals(app, new_uow, rules), "renewed": renewed,
            "failed_charges": failed, "expired": expire_lapsed(new_uow, rules),
            "expiring_cards": announce_expiring_cards(new_uow)}

