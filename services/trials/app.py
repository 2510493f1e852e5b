"""The trials service: Ultimate and Duo trials, their eligibility and lifecycle.

This is the service's foundation (database, health, OpenAPI); the trial
endpoints arrive with the trials capability.
"""

from __future__ import annotations

from flask import Flask

from services.common.clock import Clock
from services.common.config import Settings
from services.common.service import build_context
from services.common.web import create_service_app
from services.trials.adapters.models import FunnelEventRow, OutboxMessage


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> Flask:
    ctx = build_context("trials", settings or Settings.from_env("trials"), clock,
                        OutboxMessage, FunnelEventRow)
    return create_service_app(ctx, title="Trials", description=__doc__ or "", blueprints=[])
