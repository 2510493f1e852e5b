"""Buying a plan: price, charge the saved card off-session, provision.

The purchase runs as a few short transactions around the Stripe call, never
holding a database transaction open across the network:

1. claim the Idempotency-Key (committed at once: concurrent twins wait for it);
2. check the rules, price the order and write it as `pending` (a partial
   unique index allows one open order per namespace);
3. charge with a Stripe idempotency key derived from (user, key, body), so a
   retry after a timeout can not charge twice;
4. settle: provision and store the response with the order in one commit.

Stripe unreachable at step 3 removes the pending order and the claim (nothing
half-written) and answers 503; the same request can then be retried as is.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from services.checkout.adapters.models import (
    IdempotencyRecord,
    Namespace,
    Order,
    PaymentMethod,
    Subscription,
    SubscriptionAddOn,
)
from services.checkout.adapters.payments import ChargeResult, PaymentProviderUnavailable
from services.checkout.domain.pricing import Quote, Selection, assemble_quote
from services.checkout.runtime import Checkout, UowFactory
from services.checkout.usecases import access, discounts, idempotency
from services.checkout.usecases.billing import PROVIDER_DOWN, require_account
from services.checkout.usecases.views import line_view, order_view, subscription_view
from services.common.auth import Principal
from services.common.problems import Problem, not_found
from services.common.service import ServiceUnitOfWork
from services.common.telemetry import Step


@dataclass(frozen=True)
class PurchaseRequest:
    namespace_id: int
    selection: Selection
    discount_code: str | None = None
    payment_method_id: int | None = None


@dataclass(frozen=True)
class Outcome:
    status_code: int
    body: dict[str, Any]


@dataclass(frozen=True)
class _OpenOrder:
    order_id: int
    customer_id: str
    stripe_payment_method_id: str
    amount: int
    currency: str
    description: str


def purchase(app: Checkout, new_uow: UowFactory, principal: Principal, request: PurchaseRequest,
             key: str, fingerprint: str) -> Outcome:
    claimed = idempotency.claim(new_uow, principal.user_id, key, fingerprint)
    if isinstance(claimed, idempotency.Replay):
        return Outcome(claimed.status_code, claimed.body)
    try:
        opened = _open_order(app, new_uow(), principal, request)
    except Problem as problem:
        idempotency.release(new_uow, claimed.record_id)
        _record_refusal(new_uow(), principal, request, problem)
        raise
    except BaseException:
        idempotency.release(new_uow, claimed.record_id)
        raise
    stripe_key = "purchase-" + hashlib.sha256(
        f"{principal.user_id}\n{key}\n{fingerprint}".encode()).hexdigest()
    abandon = partial(_abandon, new_uow, opened.order_id, claimed.record_id, principal, request)
    # Until Stripe has charged, any failure undoes the order and the key claim.
    try:
        if request.discount_code:
            result = _redeem_and_charge(app, new_uow, opened, stripe_key, claimed.record_id)
        else:
            result = _charge(app, opened, stripe_key)
    except _ChargedButUnsettled as exc:
        # The money moved: keep the pending order; the payment_intent.succeeded
        # webhook completes it (matched by the order id in the intent's metadata).
        raise exc.__cause__ or exc from None
    except Problem as rejection:
        abandon(rejection.code)
        raise
    except PaymentProviderUnavailable as exc:
        abandon("payment_provider_unavailable")
        raise PROVIDER_DOWN from exc
    except BaseException:
        # Stripe refused our request as invalid (our bug): nothing was charged.
        abandon("payment_provider_error")
        raise
    if isinstance(result, Outcome):
        return result
    return _settle(app, new_uow(), opened.order_id, result, claimed.record_id)


class _ChargedButUnsettled(Exception):
    """Stripe charged, then recording the order failed."""


def _charge(app: Checkout, opened: _OpenOrder, stripe_key: str) -> ChargeResult:
    if opened.amount == 0:
        return ChargeResult("succeeded", None)
    return app.payments.charge(
        customer_id=opened.customer_id, payment_method_id=opened.stripe_payment_method_id,
        amount=opened.amount, currency=opened.currency, idempotency_key=stripe_key,
        description=opened.description, metadata={"order_id": str(opened.order_id)})


def _redeem_and_charge(app: Checkout, new_uow: UowFactory, opened: _OpenOrder, stripe_key: str,
                       record_id: int) -> Outcome | ChargeResult:
    """Take the code's use, charge, and complete in one transaction.

    The conditional UPDATE holds the campaign row until commit, so buyers of
    one campaign queue here and the cap is exact; a charge that does not
    succeed rolls the use back (nothing was taken, nothing needs freeing).
    This holds the lock across the Stripe call by design: exactness without
    charge-then-refund, at the cost of serialising one campaign's purchases.
    """
    with new_uow() as uow:
        order = lock_order(uow, opened.order_id)
        discounts.redeem(uow, order)
        charge = _charge(app, opened, stripe_key)
        if charge.status != "succeeded":
            return charge  # declined or 3-D Secure: the use rolls back with the transaction
        try:
            outcome = apply_charge(app, uow, order, charge)
            idempotency.finish(uow.session, record_id, outcome.status_code, outcome.body, uow.now)
            uow.commit()
        except Exception as exc:
            raise _ChargedButUnsettled() from exc
        return outcome


def _record_refusal(uow: ServiceUnitOfWork, principal: Principal, request: PurchaseRequest,
                    problem: Problem) -> None:
    """A purchase refused before any charge is still a funnel step worth counting."""
    if problem.status in (401, 404):
        return  # not a buyer of this namespace: nothing to measure
    with uow:
        uow.track(Step.PURCHASE_FAILED, user_id=principal.user_id,
                  namespace_id=request.namespace_id, reason=problem.code)
        uow.commit()


def _price(app: Checkout, uow: ServiceUnitOfWork, principal: Principal, namespace: Namespace,
           request: PurchaseRequest) -> Quote:
    facts = access.namespace_facts(uow.session, namespace)
    today = uow.now.date()
    quote = assemble_quote(app.catalog, request.selection, facts, today)
    if request.discount_code:
        outcome = discounts.evaluate_code(uow, principal, quote, request.discount_code)
        if outcome.rejection is not None:
            raise outcome.rejection
        quote = assemble_quote(app.catalog, request.selection, facts, today, outcome.applied)
    return quote


def _open_order(app: Checkout, uow: ServiceUnitOfWork, principal: Principal,
                request: PurchaseRequest) -> _OpenOrder:
    with uow:
        # The namespace row lock makes "no active subscription, no open order"
        # and the insert of ours one step: settling an order writes this row too.
        namespace = access.load_namespace(uow.session, request.namespace_id, principal,
                                          owner=True, lock=True)
        account = require_account(uow.session, principal)
        card = _choose_card(uow, account.id, account.default_payment_method, request.payment_method_id)
        active = uow.session.scalar(select(Subscription).where(
            Subscription.namespace_id == namespace.id, Subscription.status == "active"))
        if active is not None:
            raise Problem(409, "already_subscribed", "Namespace already subscribed",
                          f"{namespace.path} already has an active {active.plan} subscription "
                          f"until {active.term_end.isoformat()}.")
        quote = _price(app, uow, principal, namespace, request)
        order = Order(
            billing_account_id=account.id, namespace_id=namespace.id, user_id=principal.user_id,
            plan=quote.plan, seats=quote.seats, currency=quote.currency, subtotal=quote.subtotal,
            discount_total=quote.discount_total, total=quote.total,
            lines=[line_view(line) for line in quote.lines], catalog_version=quote.catalog_version,
            discount_code=quote.discount.code if quote.discount else None,
            term_start=quote.term_start, term_end=quote.term_end, status="pending",
            payment_method_id=card.id, traffic=uow.traffic.value, created_at=uow.now)
        uow.session.add(order)
        opened = _OpenOrder(0, account.stripe_customer_id or "", card.stripe_payment_method_id,
                            quote.total, quote.currency,
                            f"{app.catalog.plans[quote.plan].name}, {quote.seats} seats, "
                            f"{namespace.path}")
        path = namespace.path
        try:
            uow.commit()
        except IntegrityError as exc:
            uow.rollback()
            raise Problem(409, "purchase_in_progress", "A purchase is already in progress",
                          f"Another purchase for {path} is being processed; "
                          "wait for it to finish.") from exc
        return replace(opened, order_id=order.id)


def _choose_card(uow: ServiceUnitOfWork, account_id: int, default: PaymentMethod | None,
                 wanted: int | None) -> PaymentMethod:
    if wanted is not None:
        card = uow.session.get(PaymentMethod, wanted)
        if card is None or card.billing_account_id != account_id:
            raise not_found("payment_method", wanted)
        return card
    if default is None:
        raise Problem(409, "payment_method_missing", "No card on file",
                      "Add a card to your billing account before buying.")
    return default


def _abandon(new_uow: UowFactory, order_id: int, record_id: int, principal: Principal,
             request: PurchaseRequest, reason: str) -> None:
    """Undo an order Stripe never charged, and its key claim, in one commit."""
    with new_uow() as uow:
        uow.session.execute(delete(Order).where(Order.id == order_id))
        uow.session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == record_id))
        uow.track(Step.PURCHASE_FAILED, user_id=principal.user_id,
                  namespace_id=request.namespace_id, reason=reason)
        uow.commit()


def _settle(app: Checkout, uow: ServiceUnitOfWork, order_id: int, charge: ChargeResult,
            record_id: int | None) -> Outcome:
    with uow:
        order = lock_order(uow, order_id)
        outcome = apply_charge(app, uow, order, charge)
        if record_id is not None:
            idempotency.finish(uow.session, record_id, outcome.status_code, outcome.body, uow.now)
        uow.commit()
        return outcome


def lock_order(uow: ServiceUnitOfWork, order_id: int) -> Order:
    """Lock an order for a state change. Locks are always taken namespace first,
    then order (as opening an order does), so concurrent paths can not deadlock."""
    namespace_id = uow.session.scalar(select(Order.namespace_id).where(Order.id == order_id))
    if namespace_id is None:
        raise not_found("order", order_id)
    uow.session.execute(select(Namespace.id).where(Namespace.id == namespace_id).with_for_update())
    order = uow.session.scalar(select(Order).where(Order.id == order_id).with_for_update()
                               .execution_options(populate_existing=True))
    assert order is not None
    return order


def apply_charge(app: Checkout, uow: ServiceUnitOfWork, order: Order, charge: ChargeResult) -> Outcome:
    """Move an order along what Stripe said about its payment. Idempotent:
    a completed order stays completed whatever arrives late or twice."""
    if order.status == "completed":
        return _completed(uow, order)
    if charge.payment_intent_id:
        order.stripe_payment_intent_id = charge.payment_intent_id
    if charge.status == "succeeded":
        return _complete(app, uow, order)
    if charge.status in ("requires_action", "processing"):
        if order.status != "requires_action":
            order.status = "requires_action"
            uow.track(Step.THREE_DS_REQUIRED, user_id=order.user_id, namespace_id=order.namespace_id,
                      order_id=order.id)
        return Outcome(202, {"status": "requires_action", "order": order_view(order),
                             "client_secret": charge.client_secret,
                             "next_step": f"Authenticate the payment with Stripe.js, then POST "
                                          f"/orders/{order.id}/confirm."})
    if order.status != "failed":
        order.status = "failed"
        order.failure_code = charge.decline_code or "card_declined"
        order.failure_message = charge.message
        uow.track(Step.PURCHASE_FAILED, user_id=order.user_id, namespace_id=order.namespace_id,
                  order_id=order.id, reason=order.failure_code)
    problem = Problem(402, "card_declined", "Card declined",
                      f"{order.failure_message or 'Your card was declined.'} Nothing was charged; "
                      "add another card and try again with a new Idempotency-Key.",
                      decline_code=order.failure_code, order_id=order.id)
    return Outcome(402, problem.to_dict())


def _complete(app: Checkout, uow: ServiceUnitOfWork, order: Order) -> Outcome:
    if order.discount_code and not discounts.is_redeemed(uow.session, order.id):
        # Completed after 3-D Secure: the code's use is taken only now.
        try:
            with uow.session.begin_nested():
                discounts.redeem(uow, order)
        except Problem as rejection:
            return _refund(app, uow, order, rejection)
    addons = [line for line in order.lines if line["kind"] == "addon"]
    subscription = Subscription(
        namespace_id=order.namespace_id, billing_account_id=order.billing_account_id,
        plan=order.plan, seats=order.seats, term_start=order.term_start, term_end=order.term_end,
        auto_renew=True, status="active", first_order_id=order.id, created_at=uow.now,
        updated_at=uow.now,
        addons=[SubscriptionAddOn(sku=line["sku"], seats=line["quantity"]) for line in addons])
    uow.session.add(subscription)
    namespace = uow.session.get(Namespace, order.namespace_id)
    assert namespace is not None
    namespace.plan = order.plan
    order.status = "completed"
    order.completed_at = uow.now
    uow.session.flush()
    card = uow.session.get(PaymentMethod, order.payment_method_id) if order.payment_method_id else None
    account = order.billing_account_id
    uow.publish("order.completed", {
        **order_view(order), "order_id": order.id, "user_id": order.user_id,
        "billing_account_id": account, "namespace_path": namespace.path,
        "card": {"brand": card.brand, "last4": card.last4, "exp_month": card.exp_month,
                 "exp_year": card.exp_year} if card else None,
    })
    uow.publish("subscription.created", {
        **subscription_view(subscription), "subscription_id": subscription.id,
        "billing_account_id": account, "namespace_path": namespace.path,
        "features": app.catalog.features_for(order.plan, tuple(a["sku"] for a in addons)),
    })
    uow.track(Step.PURCHASE_COMPLETED, user_id=order.user_id, namespace_id=order.namespace_id,
              order_id=order.id, plan=order.plan, seats=order.seats, total=order.total,
              discount_code=order.discount_code)
    return _completed(uow, order, subscription)


def _refund(app: Checkout, uow: ServiceUnitOfWork, order: Order, rejection: Problem) -> Outcome:
    """The offer ran out while the buyer authenticated: give the money back."""
    if order.stripe_payment_intent_id:
        app.payments.refund(order.stripe_payment_intent_id,
                            idempotency_key=f"refund-order-{order.id}")
    order.status = "failed"
    order.failure_code = rejection.code
    order.failure_message = rejection.detail
    uow.track(Step.PURCHASE_FAILED, user_id=order.user_id, namespace_id=order.namespace_id,
              order_id=order.id, reason=rejection.code, refunded=True)
    problem = Problem(409, rejection.code, "Discount no longer available",
                      f"{rejection.detail} Your payment was refunded in full; buy again without "
                      "the code or with another one.", order_id=order.id, refunded=True)
    return Outcome(409, problem.to_dict())


def _completed(uow: ServiceUnitOfWork, order: Order, sub: Subscription | None = None) -> Outcome:
    if sub is None:
        sub = uow.session.scalar(select(Subscription).where(Subscription.first_order_id == order.id))
    return Outcome(201, {"status": "completed", "order": order_view(order),
                         "subscription": subscription_view(sub) if sub else None})


def confirm(app: Checkout, uow: ServiceUnitOfWork, principal: Principal, order_id: int) -> Outcome:
    """Finish an order after the browser authenticated its payment (3-D Secure)."""
    with uow:
        order = lock_order(uow, order_id)
        access.load_namespace(uow.session, order.namespace_id, principal, owner=True)
        if order.status in ("completed", "failed") or not order.stripe_payment_intent_id:
            outcome = _current(app, uow, order)
        else:
            try:
                charge = app.payments.get_payment_intent(order.stripe_payment_intent_id)
            except PaymentProviderUnavailable as exc:
                raise PROVIDER_DOWN from exc
            outcome = apply_charge(app, uow, order, charge)
            if charge.status == "requires_action":
                raise Problem(409, "authentication_pending", "Authentication not finished",
                              "The bank's check (3-D Secure) has not been completed yet.",
                              client_secret=charge.client_secret, order_id=order.id)
        uow.commit()
        return outcome


def _current(app: Checkout, uow: ServiceUnitOfWork, order: Order) -> Outcome:
    if order.status == "failed":
        return apply_charge(app, uow, order, ChargeResult("declined", order.stripe_payment_intent_id,
                                                          None, order.failure_code,
                                                          order.failure_message))
    if order.status == "completed":
        return _completed(uow, order)
    return Outcome(202, {"status": order.status, "order": order_view(order), "client_secret": None,
                         "next_step": "Wait for the payment to finish."})


def get_order(uow: ServiceUnitOfWork, principal: Principal, order_id: int) -> dict[str, Any]:
    with uow:
        order = uow.session.get(Order, order_id)
        if order is None:
            raise not_found("order", order_id)
        access.load_namespace(uow.session, order.namespace_id, principal)
        return order_view(order)
