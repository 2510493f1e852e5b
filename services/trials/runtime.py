"""The trials service's parts, wired once and shared by HTTP, worker and CLI."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import current_app

from services.common.service import ServiceContext, ServiceUnitOfWork
from services.trials.adapters.directory import NamespaceDirectory
from services.trials.domain.rules import TrialRules

UowFactory = Callable[[], ServiceUnitOfWork]


@dataclass
class Trials:
    ctx: ServiceContext
    rules: TrialRules
    directory: NamespaceDirectory


# Where create_app keeps the service's parts for its requests.
EXTENSION = "trials"


def current() -> Trials:
    """The parts of the app serving this request: the one way the HTTP layer reaches them."""
    return current_app.extensions[EXTENSION]  # type: ignore[no-any-return]
