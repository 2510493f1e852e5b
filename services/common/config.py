"""Configuration read once from the environment, with documented defaults.

Every value has a default that makes `make run` work on one machine; production
sets the secrets explicitly (see docs/configuration.md). A service reads
`<SERVICE>_DATABASE_URL` first, then `DATABASE_URL`, so one shell can run all
three services against their own databases.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VAR = ROOT / "var"

DEV_AUTH_SECRET = "dev-only-auth-secret-change-me-in-production"
DEV_WEBHOOK_SECRET = "whsec_dev_only_local_webhook_secret"

DEFAULT_PORTS = {"checkout": 8001, "trials": 8002, "notifications": 8003}


def normalise_database_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL whatever spelling the URL came in."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


@dataclass(frozen=True)
class Settings:
    service: str
    database_url: str
    auth_secret: str = DEV_AUTH_SECRET
    stripe_api_key: str = "sk_test_localstripe"
    stripe_publishable_key: str = "pk_test_localstripe"
    # None means Stripe's own API; locally it is localstripe.
    stripe_api_base: str | None = "http://127.0.0.1:8420"
    stripe_webhook_secret: str = DEV_WEBHOOK_SECRET
    stripe_timeout_seconds: float = 10.0
    stripe_js_url: str = "http://127.0.0.1:8420/js.stripe.com/v3/"
    posthog_api_key: str | None = None
    posthog_host: str = "https://us.i.posthog.com"
    # Off only to measure what the funnel events cost (make bench); never in production.
    funnel_telemetry: bool = True
    # The Server-Timing header (db, stripe, app): for load tests and the benchmark only,
    # since it tells any caller how long our database and Stripe calls take.
    server_timing: bool = False
    # Feature flags: the payload file, refreshed from a GrowthBook API host when one is set.
    growthbook_payload_file: str = str(ROOT / "experiments" / "payload.json")
    growthbook_api_host: str | None = None
    growthbook_client_key: str | None = None
    growthbook_refresh_seconds: float = 60.0
    environment: str = "development"
    # A file holding a time offset (development only): see services/timetravel.py.
    clock_file: str | None = None
    sentry_dsn: str | None = None
    ratelimit_storage_uri: str = "memory://"
    code_attempts_per_client: str = "30/minute;300/day"
    code_attempts_per_account: str = "10/minute;100/day"
    card_attempts_per_client: str = "20/minute;100/day"
    card_attempts_per_account: str = "10/minute;30/day"
    # An item a sweep failed on waits this long before its next try, doubling up to the maximum.
    sweep_retry_seconds: float = 60.0
    sweep_retry_max_seconds: float = 3600.0
    service_urls: Mapping[str, str] = field(default_factory=lambda: {
        name: f"http://127.0.0.1:{port}" for name, port in DEFAULT_PORTS.items()})

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, service: str, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        upper = service.upper()
        database_url = env.get(f"{upper}_DATABASE_URL") or env.get("DATABASE_URL")
        if not database_url:
            database_url = f"sqlite:///{VAR / (service + '.db')}"
        stripe_base = env.get("STRIPE_API_BASE", "http://127.0.0.1:8420")
        settings = cls(
            service=service,
            database_url=normalise_database_url(database_url),
            auth_secret=env.get("AUTH_SECRET", DEV_AUTH_SECRET),
            stripe_api_key=env.get("STRIPE_SECRET_KEY", "sk_test_localstripe"),
            stripe_publishable_key=env.get("STRIPE_PUBLISHABLE_KEY", "pk_test_localstripe"),
            stripe_api_base=stripe_base or None,
            stripe_webhook_secret=env.get("STRIPE_WEBHOOK_SECRET", DEV_WEBHOOK_SECRET),
            stripe_timeout_seconds=float(env.get("STRIPE_TIMEOUT_SECONDS", "10")),
            stripe_js_url=env.get("STRIPE_JS_URL")
            or (f"{stripe_base}/js.stripe.com/v3/" if stripe_base else "https://js.stripe.com/v3/"),
            posthog_api_key=env.get("POSTHOG_API_KEY") or None,
            posthog_host=env.get("POSTHOG_HOST", "https://us.i.posthog.com"),
            funnel_telemetry=env.get("FUNNEL_TELEMETRY", "on").strip().lower() not in ("off", "0", "false"),
            server_timing=env.get("SERVER_TIMING", "off").strip().lower() in ("on", "1", "true"),
            growthbook_payload_file=env.get("GROWTHBOOK_PAYLOAD_FILE")
            or str(ROOT / "experiments" / "payload.json"),
            growthbook_api_host=env.get("GROWTHBOOK_API_HOST") or None,
            growthbook_client_key=env.get("GROWTHBOOK_CLIENT_KEY") or None,
            growthbook_refresh_seconds=float(env.get("GROWTHBOOK_REFRESH_SECONDS", "60")),
            environment=env.get("APP_ENV", "development"),
            clock_file=env.get("CLOCK_FILE") or None,
            sentry_dsn=env.get("SENTRY_DSN") or None,
            ratelimit_storage_uri=env.get("RATELIMIT_STORAGE_URI", "memory://"),
            code_attempts_per_client=env.get("CODE_ATTEMPTS_PER_CLIENT", "30/minute;300/day"),
            code_attempts_per_account=env.get("CODE_ATTEMPTS_PER_ACCOUNT", "10/minute;100/day"),
            card_attempts_per_client=env.get("CARD_ATTEMPTS_PER_CLIENT", "20/minute;100/day"),
            card_attempts_per_account=env.get("CARD_ATTEMPTS_PER_ACCOUNT", "10/minute;30/day"),
            sweep_retry_seconds=float(env.get("SWEEP_RETRY_SECONDS", "60")),
            sweep_retry_max_seconds=float(env.get("SWEEP_RETRY_MAX_SECONDS", "3600")),
            service_urls={
                name: env.get(f"{name.upper()}_URL", f"http://127.0.0.1:{port}")
                for name, port in DEFAULT_PORTS.items()
            },
        )
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse to start production with the development secrets."""
        if not self.is_production:
            return
        if self.auth_secret == DEV_AUTH_SECRET or len(self.auth_secret) < 32:
            raise RuntimeError("AUTH_SECRET must be set in production (32 bytes or more)")
        if self.service == "checkout" and self.stripe_webhook_secret == DEV_WEBHOOK_SECRET:
            raise RuntimeError("STRIPE_WEBHOOK_SECRET must be set in production")
        if self.clock_file:
            raise RuntimeError("CLOCK_FILE (time travel) is for development only")
