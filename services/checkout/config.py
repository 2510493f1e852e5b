"""Checkout's own settings: Stripe's keys and where it is, and how many discount
codes and cards a client or an account may try (docs/configuration.md).

The other services neither read nor need them; `CheckoutSettings` is the shared
`Settings` plus these, read from the same environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from services.common.config import STACK_PORTS, Settings, local_url

DEV_WEBHOOK_SECRET = "whsec_dev_only_local_webhook_secret"


@dataclass(frozen=True)
class CheckoutSettings(Settings):
    stripe_api_key: str = "sk_test_localstripe"
    stripe_publishable_key: str = "pk_test_localstripe"
    # None means Stripe's own API; locally it is localstripe.
    stripe_api_base: str | None = f"http://127.0.0.1:{STACK_PORTS['localstripe']}"
    stripe_webhook_secret: str = DEV_WEBHOOK_SECRET
    stripe_timeout_seconds: float = 10.0
    code_attempts_per_client: str = "30/minute;300/day"
    code_attempts_per_account: str = "10/minute;100/day"
    card_attempts_per_client: str = "20/minute;100/day"
    card_attempts_per_account: str = "10/minute;30/day"

    @classmethod
    def of(cls, settings: Settings) -> CheckoutSettings:
        """`settings` as checkout's: its own fields at their defaults when it has none."""
        if isinstance(settings, CheckoutSettings):
            return settings
        return cls(**{f.name: getattr(settings, f.name) for f in fields(Settings)})

    @classmethod
    def from_env(cls, service: str = "checkout",
                 environ: Mapping[str, str] | None = None) -> CheckoutSettings:
        env = os.environ if environ is None else environ
        shared: dict[str, Any] = asdict(Settings.from_env(service, env))
        settings = cls(
            **shared,
            stripe_api_key=env.get("STRIPE_SECRET_KEY", "sk_test_localstripe"),
            stripe_publishable_key=env.get("STRIPE_PUBLISHABLE_KEY", "pk_test_localstripe"),
            stripe_api_base=env.get("STRIPE_API_BASE", local_url("localstripe", env)) or None,
            stripe_webhook_secret=env.get("STRIPE_WEBHOOK_SECRET", DEV_WEBHOOK_SECRET),
            stripe_timeout_seconds=float(env.get("STRIPE_TIMEOUT_SECONDS", "10")),
            code_attempts_per_client=env.get("CODE_ATTEMPTS_PER_CLIENT", "30/minute;300/day"),
            code_attempts_per_account=env.get("CODE_ATTEMPTS_PER_ACCOUNT", "10/minute;100/day"),
            card_attempts_per_client=env.get("CARD_ATTEMPTS_PER_CLIENT", "20/minute;100/day"),
            card_attempts_per_account=env.get("CARD_ATTEMPTS_PER_ACCOUNT", "10/minute;30/day"),
        )
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse to start production with the development secrets."""
        super().check()
        if self.is_production and self.stripe_webhook_secret == DEV_WEBHOOK_SECRET:
            raise RuntimeError("STRIPE_WEBHOOK_SECRET must be set in production")
