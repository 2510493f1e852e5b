"""Exposures: a unit (a person or a namespace) put in a variation of an experiment.

Assignment hashes the same id in every service, so a unit's variation is the
same everywhere and never changes: the first exposure stored wins. Where it is
stored is the caller's: an `ExposureStore` (each service keeps an `exposures`
table, funnel/exposures.py). This module says which units a person
and a namespace are, and caches what was read (`KnownVariations`).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from threading import Lock
from typing import Protocol

from flags.payload import NAMESPACE_ID, USER_ID

# (hash attribute, hash value): what assignment hashed, e.g. ("id", "42").
Unit = tuple[str, str]


@dataclass(frozen=True)
class Exposure:
    """A person (or namespace) put in a variation of an experiment."""

    experiment: str
    variation: int
    variation_name: str
    feature: str
    hash_attribute: str
    hash_value: str

    @property
    def unit(self) -> Unit:
        return (self.hash_attribute, self.hash_value)


class ExposureStore(Protocol):
    """Exposures as one service keeps them: one per experiment and unit."""

    def store_first(self, exposure: Exposure, user_id: int | None, namespace_id: int | None,
                    now: datetime) -> bool:
        """Store the exposure unless the unit already has one; True if this was the first."""
        ...

    def variations(self, unit: Unit) -> dict[str, int]:
        """{experiment key: variation} stored for the unit."""
        ...


class KnownVariations:
    """{experiment: variation} per unit, as this process last read or wrote it.

    Every funnel event carries its person's variations; reading them from the
    table each time was a fifth of a quote's CPU. A unit's variation never
    changes once stored (the first exposure wins), so the only staleness is an
    exposure another process stored in the last `ttl` seconds: an event may
    then lack that `$feature/` property. The analysis reads exposures, not
    these properties, so its numbers do not move."""

    def __init__(self, ttl: float = 30.0, size: int = 100_000) -> None:
        self._ttl, self._size = ttl, size
        self._known: OrderedDict[Unit, tuple[float, dict[str, int]]] = OrderedDict()
        self._lock = Lock()

    def get(self, unit: Unit) -> dict[str, int] | None:
        found = self._known.get(unit)
        if found is None or found[0] < time.monotonic():
            return None
        return found[1]

    def put(self, unit: Unit, variations: dict[str, int]) -> None:
        with self._lock:
            self._known[unit] = (time.monotonic() + self._ttl, variations)
            self._known.move_to_end(unit)
            while len(self._known) > self._size:
                self._known.popitem(last=False)

    def forget(self, unit: Unit) -> None:
        with self._lock:
            self._known.pop(unit, None)


def variations_of(store: ExposureStore, known: KnownVariations | None,
                  user_id: int | None, namespace_id: int | None) -> dict[str, int]:
    """{experiment key: variation} for a person and the namespace they act on;
    `known=None` reads the store without caching (a transaction that stored an
    exposure sees a row that a rollback could still take back)."""
    units = [(USER_ID, str(user_id))] if user_id is not None else []
    if namespace_id is not None:
        units.append((NAMESPACE_ID, str(namespace_id)))
    found: dict[str, int] = {}
    for unit in units:
        cached = known.get(unit) if known is not None else None
        if cached is None:
            cached = store.variations(unit)
            if known is not None:
                known.put(unit, cached)
        found.update(cached)
    return found
