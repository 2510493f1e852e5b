"""Applying a discount code to a quote.

Until the discount engine lands every code is unknown; the shape (an outcome
that either carries the discount or a structured rejection, and a funnel event
either way) is the one the engine fills in.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.checkout.domain.pricing import AppliedDiscount, Quote
from services.common.auth import Principal
from services.common.problems import Problem
from services.common.service import ServiceUnitOfWork
from services.common.telemetry import Step


@dataclass(frozen=True)
class CodeOutcome:
    code: str
    applied: AppliedDiscount | None
    rejection: Problem | None


def normalise_code(raw: str) -> str:
    return raw.strip().upper()


def evaluate_code(uow: ServiceUnitOfWork, principal: Principal, quote: Quote, raw: str) -> CodeOutcome:
    code = normalise_code(raw)
    rejection = Problem(422, "code_unknown", "Unknown discount code",
                        "This code does not exist. Check the spelling.")
    uow.track(Step.CODE_REJECTED, user_id=principal.user_id, namespace_id=quote.namespace_id,
              reason=rejection.code)
    return CodeOutcome(code, None, rejection)
