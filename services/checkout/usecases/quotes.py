"""Pricing a selection for a namespace (no state is changed but the funnel)."""

from __future__ import annotations

from funnel.telemetry import Step
from identity.auth import Principal
from services.checkout.domain.offers import SmbPrompt
from services.checkout.domain.pricing import Quote, Selection, assemble_quote
from services.checkout.runtime import Checkout
from services.checkout.usecases import discounts, offers
from services.common.service import ServiceUnitOfWork


def list_plans(app: Checkout, uow: ServiceUnitOfWork, principal: Principal | None) -> None:
    """Record that the price list was seen (the catalog itself is static data)."""
    with uow:
        uow.telemetry_only()
        uow.track(Step.PLANS_VIEWED, user_id=principal.user_id if principal else None,
                  namespace_id=None, catalog_version=app.catalog.version)
        uow.commit()


def create_quote(app: Checkout, uow: ServiceUnitOfWork, principal: Principal, namespace_id: int,
                 selection: Selection, code: str | None
                 ) -> tuple[Quote, discounts.CodeOutcome | None, SmbPrompt | None]:
    """The price, the code's outcome, and the SMB prompt when its experiment shows
    one (only while no code is entered: the prompt is about using one)."""
    with uow:
        uow.telemetry_only()
        facts, attributes = offers.for_quote(uow.session, principal, namespace_id)
        prompt = None if code else offers.smb_prompt(uow, app.offers, attributes)
        today = uow.now.date()
        quote = assemble_quote(app.catalog, selection, facts, today)
        outcome = None
        if code:
            outcome = discounts.evaluate_code(uow, principal, quote, code)
            if outcome.applied:
                quote = assemble_quote(app.catalog, selection, facts, today, outcome.applied)
        uow.track(Step.PLAN_CHOSEN, user_id=principal.user_id, namespace_id=namespace_id,
                  plan=selection.plan, seats=selection.seats, minimum_seats=quote.minimum_seats,
                  addons=[a.sku for a in selection.addons], total=quote.total)
        uow.commit()
        return quote, outcome, prompt
