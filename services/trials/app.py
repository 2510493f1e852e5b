"""The trials service: Ultimate and Duo trials, their eligibility and lifecycle.
`create_app()` is the WSGI factory."""

from __future__ import annotations

from flask import Flask

from messaging.inbox import events_blueprint
from messaging.routing import owners
from services.common.clock import Clock
from services.common.config import Settings
from services.common.pages import pages_blueprint
from services.common.service import build_context
from services.common.web import create_service_app
from services.trials.adapters.directory import CheckoutDirectory, NamespaceDirectory
from services.trials.adapters.models import (
    ExposureRow,
    FunnelEventRow,
    InboxEvent,
    OutboxMessage,
    SweepFailure,
)
from services.trials.api import trials as trials_api
from services.trials.domain.rules import TrialRules
from services.trials.pages import views as pages
from services.trials.runtime import EXTENSION, Trials
from services.trials.usecases.events import handlers


def build_trials(settings: Settings, clock: Clock | None = None,
                 directory: NamespaceDirectory | None = None) -> Trials:
    ctx = build_context("trials", settings, clock, OutboxMessage, FunnelEventRow, ExposureRow, SweepFailure)
    return Trials(ctx=ctx, rules=TrialRules.load(),
                  directory=directory or CheckoutDirectory(settings.service_urls["checkout"]))


def create_app(settings: Settings | None = None, clock: Clock | None = None,
               directory: NamespaceDirectory | None = None) -> Flask:
    trials = build_trials(settings or Settings.from_env("trials"), clock, directory)
    flask_app = create_service_app(
        trials.ctx, title="Trials", description=__doc__ or "",
        blueprints=[trials_api.blp, events_blueprint(InboxEvent, handlers(trials), owners("trials"))])
    flask_app.register_blueprint(pages_blueprint("/trials", trials.ctx.settings))
    flask_app.register_blueprint(pages.blp)
    flask_app.extensions[EXTENSION] = trials
    return flask_app
