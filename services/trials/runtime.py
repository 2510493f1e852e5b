"""The trials service's parts, wired once and shared by HTTP, worker and CLI."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from services.common.service import ServiceContext, ServiceUnitOfWork
from services.trials.adapters.directory import NamespaceDirectory
from services.trials.domain.rules import TrialRules

UowFactory = Callable[[], ServiceUnitOfWork]


@dataclass
class Trials:
    ctx: ServiceContext
    rules: TrialRules
    directory: NamespaceDirectory
