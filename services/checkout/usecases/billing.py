"""Billing account and card capture.

Card capture is a SetupIntent: the server creates it and hands the browser its
client secret; Stripe.js confirms it with the card; the server then reads the
result back from Stripe and keeps only ids, brand, last4 and expiry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from funnel.telemetry import Step
from identity.auth import Principal
from services.checkout.adapters.models import BillingAccount, PaymentMethod
from services.checkout.adapters.payments import (
    ChargeResult,
    CustomerDetails,
    PaymentObjectMissing,
    PaymentProviderUnavailable,
    PaymentRejected,
)
from services.checkout.domain.renewal import card_flags
from services.checkout.runtime import Checkout, UowFactory
from services.common.errors import (
    Conflict,
    NotFound,
    PaymentFailed,
    ProviderRefused,
    Unavailable,
)
from services.common.service import ServiceUnitOfWork

log = logging.getLogger(__name__)

PROVIDER_DOWN = Unavailable("payment_provider_unavailable", "Payment provider unavailable",
                            "We could not reach our payment provider. Nothing was charged; "
                            "try again in a moment.", retry_after=30)

PROVIDER_REJECTED = ProviderRefused(
    "payment_provider_rejected", "Payment provider refused the request",
    "Our payment provider refused this request; nothing was charged. Contact support with the "
    "request id.")

# Stripe no longer knows the card (or its customer): the buyer's way out is a new card.
CARD_GONE = Conflict("payment_method_missing", "Card no longer available",
                     "Our payment provider no longer has the card on file, so nothing was charged. "
                     "Add a card again (POST /billing-account/card-setup), then retry.")

def charge_off_session(app: Checkout, account: BillingAccount, card: PaymentMethod | None, amount: int,
                       currency: str, idempotency_key: str, description: str,
                       metadata: dict[str, str]) -> ChargeResult:
    """Charge the card on file without the customer (renewals, seat reconciliation).
    No card, a card or customer Stripe lost, or a charge Stripe refuses is a
    decline: for the owner each is a card that does not work, so dunning asks for
    another. Stripe unreachable raises (PaymentProviderUnavailable): try again later."""
    if card is None or not account.stripe_customer_id:
        return ChargeResult("declined", None, None, "no_card", "No card on file.")
    try:
        return app.payments.charge(
            customer_id=account.stripe_customer_id, payment_method_id=card.stripe_payment_method_id,
            amount=amount, currency=currency, idempotency_key=idempotency_key, description=description,
            metadata=metadata)
    except PaymentObjectMissing:
        return ChargeResult("declined", None, None, CARD_GONE.code,
                            "The card on file is no longer available.")
    except PaymentRejected as exc:
        return ChargeResult("declined", None, None, "payment_rejected", str(exc))


SETUP_NOT_FOUND = NotFound("setup_intent_not_found", "Card setup not found",
                           "No card setup with that id belongs to your billing account.")

# Which billing account a card step is for: the caller's own (checkout), or the
# one paying for a namespace the caller manages (the Billing page).
AccountLoader = Callable[[Session], BillingAccount]

ACCOUNT_FIELDS = ("company", "email", "country", "address_line1", "address_line2", "city",
                  "state", "postal_code")


@dataclass(frozen=True)
class CardSetup:
    setup_intent_id: str
    client_secret: str
    publishable_key: str
    stripe_js_url: str


def find_account(session: Session, user_id: int) -> BillingAccount | None:
    return session.scalar(select(BillingAccount).where(BillingAccount.user_id == user_id))


def require_account(session: Session, principal: Principal) -> BillingAccount:
    account = find_account(session, principal.user_id)
    if account is None:
        raise Conflict("billing_account_missing", "No billing account",
                       "Create your billing account (PUT /billing-account) first.")
    return account


def save_account(uow: ServiceUnitOfWork, principal: Principal, fields: dict[str, Any]) -> BillingAccount:
    with uow:
        account = find_account(uow.session, principal.user_id)
        created = account is None
        if account is None:
            account = BillingAccount(user_id=principal.user_id, created_at=uow.now)
            uow.session.add(account)
        for name in ACCOUNT_FIELDS:
            setattr(account, name, fields.get(name))
        account.country = account.country.upper()
        account.updated_at = uow.now
        uow.track(Step.BILLING_ACCOUNT_SAVED, user_id=principal.user_id, namespace_id=None,
                  country=account.country, created=created)
        uow.commit()
        uow.session.refresh(account)
        uow.session.expunge(account)
        return account


def get_account(uow: ServiceUnitOfWork, principal: Principal) -> tuple[BillingAccount, list[PaymentMethod]]:
    with uow:
        account = require_account(uow.session, principal)
        cards = account.cards
        uow.session.expunge_all()
        return account, cards


def _customer_details(account: BillingAccount) -> CustomerDetails:
    return CustomerDetails(account.email, account.company, account.country, account.address_line1,
                           account.address_line2, account.city, account.state, account.postal_code)


def own_account(principal: Principal) -> AccountLoader:
    return lambda session: require_account(session, principal)


def start_card_setup(app: Checkout, new_uow: UowFactory, principal: Principal,
                     load: AccountLoader | None = None) -> CardSetup:
    """Create (or refresh) the Stripe customer with the billing address, then a SetupIntent.

    Stripe is called between transactions, never inside one."""
    load = load or own_account(principal)
    with new_uow() as uow:
        account = load(uow.session)
        account_id, known, details = account.id, account.stripe_customer_id, _customer_details(account)
    try:
        customer_id = _stripe_customer(app, account_id, known, details,
                                       {"billing_account_id": str(account_id),
                                        "user_id": str(principal.user_id)})
        intent = app.payments.create_setup_intent(customer_id, {"billing_account_id": str(account_id)})
    except PaymentProviderUnavailable as exc:
        raise PROVIDER_DOWN from exc
    except PaymentRejected as exc:
        log.warning("card setup for billing account %s refused by Stripe: %s", account_id, exc)
        raise PROVIDER_REJECTED from exc
    with new_uow() as uow:
        account = load(uow.session)
        if account.stripe_customer_id == known and customer_id != known:
            account.stripe_customer_id = customer_id
            if known is not None:
                # The cards of the customer Stripe lost can never be charged again.
                uow.session.execute(update(PaymentMethod).values(is_default=False)
                                    .where(PaymentMethod.billing_account_id == account_id))
        uow.track(Step.CARD_SETUP_STARTED, user_id=principal.user_id, namespace_id=None)
        uow.commit()
        stored = account.stripe_customer_id
    if stored is not None and stored != customer_id:
        # A concurrent setup created the account's customer first: set up for that one.
        try:
            intent = app.payments.create_setup_intent(stored, {"billing_account_id": str(account_id)})
        except PaymentProviderUnavailable as exc:
            raise PROVIDER_DOWN from exc
        except PaymentRejected as exc:
            raise PROVIDER_REJECTED from exc
    return CardSetup(intent.id, intent.client_secret, app.settings.stripe_publishable_key,
                     app.settings.stripe_js_url)


def _stripe_customer(app: Checkout, account_id: int, known: str | None, details: CustomerDetails,
                     metadata: dict[str, str]) -> str:
    """The account's Stripe customer, with today's billing details; a new one if Stripe lost it."""
    key = f"customer-for-billing-account-{account_id}"
    try:
        return app.payments.upsert_customer(known, details, metadata, idempotency_key=key)
    except PaymentObjectMissing as exc:
        if known is None:
            raise
        log.warning("billing account %s: Stripe has no customer %s any more (%s); creating a new one",
                    account_id, known, exc)
        # A key of its own: Stripe would answer the first one with the customer it lost.
        return app.payments.upsert_customer(None, details, metadata,
                                            idempotency_key=f"{key}-replacing-{known}")


def record_card(app: Checkout, new_uow: UowFactory, principal: Principal, setup_intent_id: str,
                make_default: bool | None = None, load: AccountLoader | None = None,
                namespace_id: int | None = None) -> PaymentMethod:
    """Save the card a confirmed SetupIntent attached.

    It becomes the default (the card renewals charge) when asked (`make_default`),
    or, when not asked, only if the account has no default card that is still
    valid: adding a spare card never silently moves a renewal onto it."""
    load = load or own_account(principal)
    with new_uow() as uow:
        customer_id = load(uow.session).stripe_customer_id
    try:
        intent = app.payments.get_setup_intent(setup_intent_id)
    except PaymentProviderUnavailable as exc:
        raise PROVIDER_DOWN from exc
    except PaymentRejected as exc:
        raise SETUP_NOT_FOUND from exc
    if not customer_id or intent.customer_id != customer_id:
        raise SETUP_NOT_FOUND
    if intent.status == "requires_action":
        raise Conflict("authentication_required", "Card needs authentication",
                       "Your bank asks you to authenticate this card (3-D Secure); "
                       "finish the check in the browser and try again.",
                       client_secret=intent.client_secret)
    with new_uow() as uow:
        if intent.status != "succeeded" or intent.card is None:
            uow.track(Step.CARD_DECLINED, user_id=principal.user_id, namespace_id=None,
                      stripe_status=intent.status)
            uow.commit()
            raise PaymentFailed("card_declined", "Card declined",
                                "Your card was declined. Try another card or contact your bank.")
        account = load(uow.session)
        card = intent.card
        saved = uow.session.scalar(select(PaymentMethod).where(
            PaymentMethod.stripe_payment_method_id == card.payment_method_id))
        if make_default is None:
            current = account.default_payment_method
            make_default = current is None or card_flags(current.exp_month, current.exp_year,
                                                          uow.now.date(), uow.now.date())["expired"]
        if make_default:
            uow.session.execute(update(PaymentMethod)
                                .where(PaymentMethod.billing_account_id == account.id)
                                .values(is_default=False))
        if saved is None:
            saved = PaymentMethod(
                billing_account_id=account.id, stripe_payment_method_id=card.payment_method_id,
                brand=card.brand, last4=card.last4, exp_month=card.exp_month,
                exp_year=card.exp_year, created_at=uow.now)
            uow.session.add(saved)
        saved.is_default = saved.is_default or make_default
        saved.removed_at = None
        uow.track(Step.CARD_CAPTURED, user_id=principal.user_id, namespace_id=namespace_id,
                  brand=card.brand, default=saved.is_default)
        uow.commit()
        uow.session.refresh(saved)
        uow.session.expunge(saved)
        return saved
