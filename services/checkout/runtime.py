"""The checkout service's parts, wired once at start-up and shared by the HTTP
layer, the workers and the CLIs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from services.checkout.adapters.payments import PaymentGateway
from services.checkout.adapters.ratelimit import AttemptLimiter
from services.checkout.config import CheckoutSettings
from services.checkout.domain.catalog import Catalog
from services.checkout.domain.offers import OfferRules
from services.checkout.domain.portal import PortalRules
from services.checkout.domain.renewal import RenewalRules
from services.checkout.domain.seats import SeatRules
from services.common.service import ServiceContext, ServiceUnitOfWork

UowFactory = Callable[[], ServiceUnitOfWork]


@dataclass
class Checkout:
    ctx: ServiceContext
    settings: CheckoutSettings  # ctx.settings, with checkout's own
    catalog: Catalog
    payments: PaymentGateway
    code_attempts: AttemptLimiter
    card_attempts: AttemptLimiter
    renewal_rules: RenewalRules
    offers: OfferRules
    seat_rules: SeatRules
    portal: PortalRules

    def billing_url(self, namespace_id: int | None = None) -> str:
        """The Billing page (of one namespace), as mails and the dunning link point to it."""
        base = f"{self.ctx.settings.service_urls['checkout']}/billing"
        return base if namespace_id is None else f"{base}/{namespace_id}"
