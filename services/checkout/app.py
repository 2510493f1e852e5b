"""The checkout service: catalog, quotes, billing accounts, cards, purchases,
subscriptions, Stripe webhooks and the platform's directory hooks.
`create_app()` is the WSGI factory."""

from __future__ import annotations

from flask import Flask

from messaging.inbox import events_blueprint
from messaging.routing import owners
from services.checkout.adapters.models import (
    ExposureRow,
    FunnelEventRow,
    InboxEvent,
    OutboxMessage,
    SweepFailure,
)
from services.checkout.adapters.payments import PaymentGateway, StripeGateway
from services.checkout.adapters.ratelimit import AttemptLimiter
from services.checkout.adapters.seat_metrics import seat_gauges
from services.checkout.api import (
    admin,
    billing,
    catalog,
    directory,
    duo,
    expansions,
    namespaces,
    portal,
    purchases,
    quotes,
    seats,
    webhooks,
)
from services.checkout.config import CheckoutSettings
from services.checkout.domain.catalog import Catalog
from services.checkout.domain.offers import OfferRules
from services.checkout.domain.portal import PortalRules
from services.checkout.domain.renewal import RenewalRules
from services.checkout.domain.seats import SeatRules
from services.checkout.pages import views as pages
from services.checkout.runtime import Checkout
from services.checkout.usecases import trial_events
from services.common.clock import Clock
from services.common.config import Settings
from services.common.pages import pages_blueprint
from services.common.service import ServiceContext, build_context
from services.common.web import ReadinessCheck, create_service_app


def build_checkout(settings: Settings, clock: Clock | None = None,
                   payments: PaymentGateway | None = None) -> Checkout:
    settings = CheckoutSettings.of(settings)
    ctx = build_context("checkout", settings, clock, OutboxMessage, FunnelEventRow, ExposureRow, SweepFailure)
    gateway = payments or StripeGateway(settings.stripe_api_key, settings.stripe_api_base,
                                        settings.stripe_webhook_secret,
                                        settings.stripe_timeout_seconds)
    limiter = AttemptLimiter(settings.ratelimit_storage_uri, settings.code_attempts_per_client,
                             settings.code_attempts_per_account)
    cards = AttemptLimiter(settings.ratelimit_storage_uri, settings.card_attempts_per_client,
                           settings.card_attempts_per_account, name="card-attempts", what="card attempts")
    return Checkout(ctx=ctx, settings=settings, catalog=Catalog.load(), payments=gateway,
                    code_attempts=limiter, card_attempts=cards, renewal_rules=RenewalRules.load(),
                    offers=OfferRules.load(), seat_rules=SeatRules.load(), portal=PortalRules.load())


def _stripe_reachable(gateway: PaymentGateway) -> ReadinessCheck:
    def stripe(ctx: ServiceContext) -> None:
        gateway.ping()
    return stripe


def create_app(settings: Settings | None = None, clock: Clock | None = None,
               payments: PaymentGateway | None = None) -> Flask:
    checkout = build_checkout(settings or CheckoutSettings.from_env(), clock, payments)
    app = create_service_app(
        checkout.ctx, title="Checkout", description=__doc__ or "",
        blueprints=[catalog.blp, quotes.blp, billing.blp, purchases.blp, expansions.blp, namespaces.blp,
                    webhooks.blp, admin.blp, directory.blp, seats.blp, duo.blp, portal.blp,
                    events_blueprint(InboxEvent, trial_events.HANDLERS, owners("checkout"))],
        readiness_checks=[_stripe_reachable(checkout.payments)],
        json_exempt_paths=[webhooks.WEBHOOK_PATH])
    app.register_blueprint(pages_blueprint("/checkout", checkout.ctx.settings))
    app.register_blueprint(pages.blp)
    checkout.ctx.gauges.append(seat_gauges)
    app.extensions["checkout"] = checkout
    return app
