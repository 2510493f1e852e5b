"""Buying a plan: price, charge the saved card off-session, provision.

The purchase runs as a few short transactions around the Stripe call:

1. claim the Idempotency-Key (committed at once: concurrent twins wait for it);
2. check the rules, price the order and write it as `pending`, linked to the
   key (a partial unique index allows one open order per namespace);
3. charge, with a Stripe idempotency key derived from (user, key, body);
4. settle: provision and store the response with the order in one commit.

What Stripe's failure at step 3 leaves behind depends on what we know:
- the request never reached Stripe: the order and the claim are removed in
  one commit (nothing half-written), 503, and the same request starts afresh;
- it may have reached Stripe (a timeout, a 5xx): the order stays pending and
  the key waits in state `retry`, 503 `payment_status_unknown`; the same
  request resumes the order and repeats the identical Stripe call, which
  Stripe answers from its idempotency store, and a late webhook completes the
  order on its own. Either way one charge at most, and never a lost one.

With a discount code, steps 3 and 4 share one transaction (see
`_redeem_and_charge`), so the code's use is taken only by a successful charge.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any, Protocol

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from funnel.telemetry import Step
from identity.auth import Principal
from services.checkout.adapters.models import (
    BillingAccount,
    IdempotencyRecord,
    Membership,
    Namespace,
    Order,
    PaymentMethod,
)
from services.checkout.adapters.payments import (
    ChargeResult,
    PaymentObjectMissing,
    PaymentProviderUnavailable,
    PaymentRejected,
)
from services.checkout.domain import orders
from services.checkout.domain.orders import OPEN, OrderStatus
from services.checkout.domain.pricing import Quote, Selection, assemble_quote
from services.checkout.runtime import Checkout, UowFactory
from services.checkout.usecases import access, discounts, idempotency
from services.checkout.usecases.billing import (
    CARD_GONE,
    PROVIDER_DOWN,
    PROVIDER_REJECTED,
    require_account,
)
from services.checkout.usecases.settlement import (
    PurchaseResult,
    Settled,
    apply_charge,
    current_outcome,
    lock_order,
)
from services.checkout.usecases.subscriptions import active_subscription
from services.checkout.usecases.views import line_view, order_view, subscription_view
from services.common.errors import (
    Conflict,
    DomainError,
    Forbidden,
    NotFound,
    Unavailable,
    not_found,
)
from services.common.service import ServiceUnitOfWork

log = logging.getLogger(__name__)

# A pending order older than this belongs to a buyer who never came back (or a
# crash); a new purchase may replace it. Any payment it did take is refunded
# when Stripe's webhook for it arrives (settlement refunds duplicates).
STALE_PENDING = timedelta(minutes=15)

# How the HTTP edge answers a settled purchase: kept with the order, in the
# same commit, for the Idempotency-Key's replays.
Render = Callable[[Settled], idempotency.Replay]

PAYMENT_UNCERTAIN = Unavailable(
    "payment_status_unknown", "Payment status unknown",
    "Our payment provider did not answer in time, so we can not tell yet whether your card was "
    "charged. Send the same request with the same Idempotency-Key again: it finishes this "
    "purchase and never charges twice.", retry_after=10)

class Buyable(Protocol):
    """What `purchase` buys: a first plan or upgrade (PurchaseRequest), or an
    expansion (usecases/expansions.py). Each prices itself into a new order."""

    @property
    def namespace_id(self) -> int: ...
    @property
    def payment_method_id(self) -> int | None: ...

    def funnel(self) -> dict[str, Any]:
        """Properties every funnel step of this purchase carries."""
        ...

    def priced_order(self, app: Checkout, uow: ServiceUnitOfWork, principal: Principal,
                     namespace: Namespace) -> Order:
        """The order at its price, checked against the rules (not yet added)."""
        ...


@dataclass(frozen=True)
class PurchaseRequest:
    namespace_id: int
    selection: Selection
    discount_code: str | None = None
    payment_method_id: int | None = None

    def funnel(self) -> dict[str, Any]:
        return {}

    def priced_order(self, app: Checkout, uow: ServiceUnitOfWork, principal: Principal,
                     namespace: Namespace) -> Order:
        quote = _price(app, uow, principal, namespace, self)
        return Order(
            namespace_id=namespace.id, user_id=principal.user_id,
            plan=quote.plan, seats=quote.seats, currency=quote.currency, subtotal=quote.subtotal,
            discount_total=quote.discount_total, total=quote.total,
            lines=[line_view(line) for line in quote.lines], catalog_version=quote.catalog_version,
            discount_code=quote.discount.code if quote.discount else None,
            term_start=quote.term_start, term_end=quote.term_end,
            kind="upgrade" if quote.upgrade_of else "purchase", upgrades_subscription_id=quote.upgrade_of,
            upgrade_from_plan=namespace.plan if quote.upgrade_of else None)


@dataclass(frozen=True)
class _OpenOrder:
    order_id: int
    customer_id: str
    stripe_payment_method_id: str
    amount: int
    currency: str
    description: str
    discount_code: str | None


class _ChargedButUnsettled(Exception):
    """Stripe charged, then recording the order failed."""


def purchase(app: Checkout, new_uow: UowFactory, principal: Principal, request: Buyable,
             key: str, fingerprint: str, render: Render) -> Settled | idempotency.Replay:
    """The purchase's result, or the stored answer to an earlier request with this key."""
    claimed = idempotency.claim(new_uow, principal.user_id, key, fingerprint)
    if isinstance(claimed, idempotency.Replay):
        return claimed
    try:
        if claimed.resume_order_id is not None:
            opened = _reopen(app, new_uow(), claimed.resume_order_id, claimed.record_id, render)
        else:
            opened = _open_order(app, new_uow(), principal, request, claimed.record_id)
    except DomainError as problem:
        idempotency.release(new_uow, claimed.record_id)
        _record_refusal(new_uow(), principal, request, problem)
        raise
    except BaseException:
        idempotency.release(new_uow, claimed.record_id)
        raise
    if not isinstance(opened, _OpenOrder):
        return opened  # a webhook settled the resumed order meanwhile
    stripe_key = "purchase-" + hashlib.sha256(
        f"{principal.user_id}\n{key}\n{fingerprint}".encode()).hexdigest()
    abandon = partial(_abandon, new_uow, opened.order_id, claimed.record_id, principal, request)
    try:
        if opened.discount_code:
            result = _redeem_and_charge(app, new_uow, opened, stripe_key, claimed.record_id, render)
        else:
            result = _charge(app, opened, stripe_key)
    except _ChargedButUnsettled as exc:
        # The money moved: keep the pending order; the payment_intent.succeeded
        # webhook completes it (matched by the order id in the intent's metadata).
        raise exc.__cause__ or exc from None
    except DomainError as rejection:
        abandon(rejection.code)
        raise
    except PaymentProviderUnavailable as exc:
        if exc.maybe_applied:
            idempotency.await_retry(new_uow, claimed.record_id)
            raise PAYMENT_UNCERTAIN from exc
        abandon("payment_provider_unavailable")
        raise PROVIDER_DOWN from exc
    except PaymentObjectMissing as exc:
        log.warning("order %s not charged: Stripe lost the card or its customer (%s)", opened.order_id, exc)
        abandon(CARD_GONE.code)
        raise CARD_GONE from exc
    except PaymentRejected as exc:
        abandon("payment_provider_rejected")
        raise PROVIDER_REJECTED from exc
    if not isinstance(result, ChargeResult):
        return result
    return _settle(app, new_uow(), opened.order_id, result, claimed.record_id, render)


def _charge(app: Checkout, opened: _OpenOrder, stripe_key: str) -> ChargeResult:
    if opened.amount == 0:
        return ChargeResult("succeeded", None)
    return app.payments.charge(
        customer_id=opened.customer_id, payment_method_id=opened.stripe_payment_method_id,
        amount=opened.amount, currency=opened.currency, idempotency_key=stripe_key,
        description=opened.description, metadata={"order_id": str(opened.order_id)})


def _redeem_and_charge(app: Checkout, new_uow: UowFactory, opened: _OpenOrder, stripe_key: str,
                       record_id: int, render: Render) -> Settled | ChargeResult:
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
            idempotency.finish(uow.session, record_id, render(outcome), uow.now)
            uow.commit()
        except Exception as exc:
            raise _ChargedButUnsettled() from exc
        return outcome


def _record_refusal(uow: ServiceUnitOfWork, principal: Principal, request: Buyable,
                    problem: DomainError) -> None:
    """A purchase refused before any charge is still a funnel step worth counting."""
    if isinstance(problem, NotFound):
        return  # not a buyer of this namespace: nothing to measure
    with uow:
        uow.track(Step.PURCHASE_FAILED, user_id=principal.user_id,
                  namespace_id=request.namespace_id, reason=problem.code, **request.funnel())
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
                request: Buyable, record_id: int) -> _OpenOrder:
    with uow:
        # The namespace row lock makes "no active subscription, no open order"
        # and the insert of ours one step: settling an order locks this row too.
        namespace = access.load_namespace(uow.session, request.namespace_id, principal,
                                          owner=True, lock=True)
        account = require_account(uow.session, principal)
        card = _choose_card(uow, account.id, account.default_payment_method, request.payment_method_id)
        _supersede_open_order(app, uow, namespace)
        order = request.priced_order(app, uow, principal, namespace)
        order.billing_account_id, order.payment_method_id = account.id, card.id
        order.status, order.traffic, order.created_at = OrderStatus.PENDING, uow.traffic.value, uow.now
        uow.session.add(order)
        path = namespace.path
        try:
            uow.session.flush()
        except IntegrityError as exc:  # the one-open-order index, should the lock be bypassed
            uow.rollback()
            raise Conflict("purchase_in_progress", "A purchase is already in progress",
                           f"Another purchase for {path} is being processed.") from exc
        idempotency.link_order(uow.session, record_id, order.id)
        opened = _OpenOrder(order.id, account.stripe_customer_id or "", card.stripe_payment_method_id,
                            order.total, order.currency, _describe(app, order, namespace.path),
                            order.discount_code)
        uow.commit()
        return opened


def _describe(app: Checkout, order: Order, path: str) -> str:
    return order.heading or f"{app.catalog.plans[order.plan].name}, {order.seats} seats, {path}"


def _supersede_open_order(app: Checkout, uow: ServiceUnitOfWork, namespace: Namespace) -> None:
    """One open order per namespace: an abandoned 3-D Secure check or a long
    stale pending order gives way to the new purchase; a live one does not."""
    current = uow.session.scalar(select(Order).where(Order.namespace_id == namespace.id,
                                                     Order.status.in_(OPEN)))
    if current is None:
        return
    if current.status == OrderStatus.PENDING and current.created_at > uow.now - STALE_PENDING:
        raise Conflict("purchase_in_progress", "A purchase is already in progress",
                       f"Another purchase for {namespace.path} is being processed; "
                       "wait for it to finish.")
    current.status = orders.supersede(current.status).status
    uow.session.flush()  # frees the one-open-order index before our insert
    intent = current.stripe_payment_intent_id
    if intent:
        uow.after_commit(partial(_cancel_intent, app, intent))


def _cancel_intent(app: Checkout, intent_id: str) -> None:
    """Best effort: if the cancel is lost and the buyer still pays, the webhook refunds."""
    try:
        app.payments.cancel(intent_id)
    except Exception:
        log.warning("could not cancel superseded payment intent %s", intent_id)


def _reopen(app: Checkout, uow: ServiceUnitOfWork, order_id: int, record_id: int,
            render: Render) -> _OpenOrder | Settled:
    """The order a retried request left pending: charge it again (same Stripe
    key, same parameters), unless a webhook settled it meanwhile."""
    with uow:
        order = lock_order(uow, order_id)
        if order.status != OrderStatus.PENDING:
            outcome = current_outcome(uow, order)
            idempotency.finish(uow.session, record_id, render(outcome), uow.now)
            uow.commit()
            return outcome
        card = uow.session.get(PaymentMethod, order.payment_method_id)
        account = uow.session.get(BillingAccount, order.billing_account_id)
        namespace = uow.session.get(Namespace, order.namespace_id)
        assert card is not None and account is not None and namespace is not None
        return _OpenOrder(order.id, account.stripe_customer_id or "", card.stripe_payment_method_id,
                          order.total, order.currency, _describe(app, order, namespace.path),
                          order.discount_code)


def _choose_card(uow: ServiceUnitOfWork, account_id: int, default: PaymentMethod | None,
                 wanted: int | None) -> PaymentMethod:
    if wanted is not None:
        card = uow.session.get(PaymentMethod, wanted)
        if card is None or card.billing_account_id != account_id or card.removed_at is not None:
            raise not_found("payment_method", wanted)
        return card
    if default is None:
        raise Conflict("payment_method_missing", "No card on file",
                       "Add a card to your billing account before buying.")
    return default


def _abandon(new_uow: UowFactory, order_id: int, record_id: int, principal: Principal,
             request: Buyable, reason: str) -> None:
    """Undo an order Stripe never charged, and its key claim, in one commit."""
    with new_uow() as uow:
        uow.session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == record_id))
        uow.session.execute(delete(Order).where(Order.id == order_id))
        uow.track(Step.PURCHASE_FAILED, user_id=principal.user_id,
                  namespace_id=request.namespace_id, reason=reason, **request.funnel())
        uow.commit()


def _settle(app: Checkout, uow: ServiceUnitOfWork, order_id: int, charge: ChargeResult,
            record_id: int, render: Render) -> Settled:
    with uow:
        order = lock_order(uow, order_id)
        outcome = apply_charge(app, uow, order, charge)
        idempotency.finish(uow.session, record_id, render(outcome), uow.now)
        uow.commit()
        return outcome


def _visible_order(uow: ServiceUnitOfWork, principal: Principal, order_id: int,
                   *, owner: bool = False) -> Order:
    """The order if the caller is a member of its namespace; 404 alike otherwise."""
    order = uow.session.get(Order, order_id)
    role = uow.session.scalar(select(Membership.role).where(
        Membership.namespace_id == order.namespace_id,
        Membership.user_id == principal.user_id)) if order else None
    if order is None or (role is None and not principal.is_admin):
        raise not_found("order", order_id)
    if owner and role != "owner":
        raise Forbidden("not_owner", "Owner role required", "Only Owners can finish a purchase.")
    return order


def confirm(app: Checkout, new_uow: UowFactory, principal: Principal, order_id: int) -> Settled:
    """Finish an order after the browser authenticated its payment (3-D Secure).

    Stripe is asked outside any transaction; the answer is applied under lock."""
    with new_uow() as uow:
        order = _visible_order(uow, principal, order_id, owner=True)
        intent_id, status = order.stripe_payment_intent_id, order.status
    charge = None
    if intent_id and status != OrderStatus.COMPLETED:
        try:
            charge = app.payments.get_payment_intent(intent_id)
        except PaymentProviderUnavailable as exc:
            raise PROVIDER_DOWN from exc
        except PaymentRejected as exc:  # the intent is gone at Stripe: say so, not a 500
            raise PROVIDER_REJECTED from exc
    with new_uow() as uow:
        order = lock_order(uow, order_id)
        outcome = apply_charge(app, uow, order, charge) if charge else current_outcome(uow, order)
        uow.commit()
    if charge is not None and charge.status == "requires_action" and isinstance(outcome, PurchaseResult) \
            and outcome.status is not OrderStatus.COMPLETED:
        raise Conflict("authentication_pending", "Authentication not finished",
                       "The bank's check (3-D Secure) has not been completed yet.",
                       client_secret=charge.client_secret, order_id=order_id)
    return outcome


def get_order(uow: ServiceUnitOfWork, principal: Principal, order_id: int) -> dict[str, Any]:
    with uow:
        return order_view(_visible_order(uow, principal, order_id))


def confirmation(uow: ServiceUnitOfWork, principal: Principal,
                 order_id: int) -> tuple[dict[str, Any], str, dict[str, Any] | None]:
    """What an order's confirmation page shows, in one transaction: the order, its
    namespace's path and, once it completed, the namespace's active subscription
    (None if that has ended since, or was refunded)."""
    with uow:
        order = _visible_order(uow, principal, order_id)
        path = uow.session.scalar(select(Namespace.path).where(Namespace.id == order.namespace_id))
        sub = active_subscription(uow, order.namespace_id) if order.status == OrderStatus.COMPLETED else None
        return order_view(order), path or "", subscription_view(sub) if sub else None
