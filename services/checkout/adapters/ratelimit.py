"""Rate limits on attempts that a guesser or a card tester repeats: discount
codes (so the code checker is no oracle) and card set-ups (the usual way to
test stolen cards is many SetupIntents from one account or one address).

Built on `limits` (the engine behind Flask-Limiter) with a moving window;
storage is `memory://` for one process and Redis (`redis://...`) when several
workers must share counts.
"""

from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from services.common.problems import Problem

log = logging.getLogger(__name__)


class AttemptLimiter:
    def __init__(self, storage_uri: str, per_client: str, per_account: str, *,
                 name: str = "code-attempts", what: str = "discount code attempts") -> None:
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_uri))
        self._limits: dict[str, list[RateLimitItem]] = {
            "client": parse_many(per_client), "account": parse_many(per_account)}
        self._name, self._what = name, what

    def hit(self, *, client: str, account: str) -> None:
        """Count one attempt; 429 with Retry-After once a limit is reached.

        If the counter store (Redis) is down the attempt is allowed and logged:
        a prospect's checkout matters more than a guesser's extra tries."""
        try:
            self._count(client, account)
        except Problem:
            raise
        except Exception as exc:
            log.error("%s limits unavailable (%s); allowing the attempt", self._name, type(exc).__name__)

    def _count(self, client: str, account: str) -> None:
        for scope, key in (("client", client), ("account", account)):
            for item in self._limits[scope]:
                if not self._limiter.hit(item, self._name, scope, key):
                    reset = self._limiter.get_window_stats(item, self._name, scope, key).reset_time
                    wait = max(1, math.ceil(reset - time.time()))
                    raise Problem(429, "rate_limited", "Too many attempts",
                                  f"Too many {self._what}; try again in {wait} seconds.",
                                  headers={"Retry-After": str(wait)})

    def ping(self) -> None:
        self._limiter.storage.check()
