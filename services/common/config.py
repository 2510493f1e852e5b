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
from typing import Self

from identity.auth import parse_role_map

ROOT = Path(__file__).resolve().parents[2]

DEV_AUTH_SECRET = "dev-only-auth-secret-change-me-in-production"

DEFAULT_PORTS = {"checkout": 8001, "trials": 8002, "notifications": 8003}
# Everything `make run` listens on. `<NAME>_PORT` moves one; PORT_OFFSET moves
# every one left at its default (a second stack), and the URLs a process calls
# follow both, so one setting moves a whole stack.
STACK_PORTS = {**DEFAULT_PORTS, "experiments": 8004, "localstripe": 8420, "smtp": 8025, "oidc": 8430}
# The client `make run` registers with its local identity provider (oidc-provider-mock
# takes any client id and secret); production sets its own.
DEV_OIDC_CLIENT_ID = "devops-checkout"
DEV_OIDC_CLIENT_SECRET = "dev-only-oidc-client-secret"


def var_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where `make run` keeps its state (databases, mail, Stripe's, the clock): VAR_DIR, else var/."""
    env = os.environ if environ is None else environ
    return Path(env.get("VAR_DIR") or ROOT / "var").absolute()


def port_for(name: str, environ: Mapping[str, str] | None = None) -> int:
    """The port `make run` gives one of STACK_PORTS; ValueError says which setting is wrong."""
    env = os.environ if environ is None else environ
    variable = f"{name.upper()}_PORT"
    if explicit := env.get(variable):
        port = _whole_number(variable, explicit, "a port number")
    else:
        port = STACK_PORTS[name] + _whole_number("PORT_OFFSET", env.get("PORT_OFFSET") or "0", "a number")
    if not 0 < port < 65536:
        raise ValueError(f"the {name} port would be {port}: check {variable} and PORT_OFFSET")
    return port


def _whole_number(variable: str, text: str, what: str) -> int:
    if not text.strip().isdigit():
        raise ValueError(f"{variable} must be {what}, not {text!r}")
    return int(text)


def local_url(name: str, environ: Mapping[str, str] | None = None) -> str:
    """Where this machine's stack serves one of STACK_PORTS over HTTP."""
    return f"http://127.0.0.1:{port_for(name, environ)}"


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
    # Signs the pages' session cookie and CSRF tokens; in development and tests also
    # HS256 bearer tokens (production refuses those: identity/auth.py).
    auth_secret: str = DEV_AUTH_SECRET
    # Sign-in with the platform's OpenID Connect provider (docs/configuration.md).
    oidc_issuer: str | None = None
    oidc_client_id: str = DEV_OIDC_CLIENT_ID
    oidc_client_secret: str = DEV_OIDC_CLIENT_SECRET
    oidc_audience: str | None = None  # what provider tokens must be for; the client id if unset
    oidc_roles_claim: str = "groups"
    oidc_role_map: Mapping[str, str] = field(default_factory=dict)  # provider group -> platform role
    oidc_clock_skew_seconds: int = 30
    jwks_cache_seconds: float = 300.0
    # A signed-in browser's session lapses after this long without a request.
    session_idle_minutes: int = 30
    # This service's Ed25519 key for calling other services, and the keys it trusts.
    service_key: str | None = None
    service_public_keys: str = ""
    # Stripe.js, which the pages' Content-Security-Policy allows (checkout's other
    # Stripe settings are its own: services/checkout/config.py).
    stripe_js_url: str = f"http://127.0.0.1:{STACK_PORTS['localstripe']}/js.stripe.com/v3/"
    posthog_api_key: str | None = None
    posthog_host: str = "https://us.i.posthog.com"
    # Off only to measure what the funnel events cost (make bench); never in production.
    funnel_telemetry: bool = True
    # View-only funnel rows (a quote, an eligibility check) are written this often in
    # batches, off the request path (funnel/batch.py); 0 writes them in
    # the step's transaction. From the environment: 200 in production, 0 elsewhere.
    funnel_batch_ms: int = 0
    # At most this many rows wait per process (what a SIGKILL may lose); a request
    # that finds the buffer full writes it itself.
    funnel_batch_max_rows: int = 1000
    # The Server-Timing header (db, stripe, app): for load tests and the benchmark only,
    # since it tells any caller how long our database and Stripe calls take.
    server_timing: bool = False
    # Feature flags: the payload file, refreshed from a GrowthBook API host when one is set.
    growthbook_payload_file: str = str(ROOT / "experiments" / "payload.json")
    growthbook_api_host: str | None = None
    growthbook_client_key: str | None = None
    growthbook_refresh_seconds: float = 60.0
    environment: str = "development"
    # A file holding a time offset (development only): see devtools/timetravel.py.
    clock_file: str | None = None
    sentry_dsn: str | None = None
    ratelimit_storage_uri: str = "memory://"
    # An item a sweep failed on waits this long before its next try, doubling up to the maximum.
    sweep_retry_seconds: float = 60.0
    sweep_retry_max_seconds: float = 3600.0
    service_urls: Mapping[str, str] = field(default_factory=lambda: {
        name: f"http://127.0.0.1:{port}" for name, port in DEFAULT_PORTS.items()})
    # Where a browser opens checkout's pages (the trials page links there to buy):
    # its public address, which service_urls["checkout"] (the cluster's) is not in production.
    checkout_pages_url: str = f"http://127.0.0.1:{DEFAULT_PORTS['checkout']}"

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    def with_overrides(self, **changes: object) -> Self:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, service: str, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        upper = service.upper()
        database_url = env.get(f"{upper}_DATABASE_URL") or env.get("DATABASE_URL")
        if not database_url:
            database_url = f"sqlite:///{var_dir(env) / (service + '.db')}"
        stripe_base = env.get("STRIPE_API_BASE", local_url("localstripe", env))
        service_urls = {name: env.get(f"{name.upper()}_URL") or local_url(name, env)
                        for name in DEFAULT_PORTS}
        settings = cls(
            service=service,
            database_url=normalise_database_url(database_url),
            auth_secret=env.get("AUTH_SECRET", DEV_AUTH_SECRET),
            oidc_issuer=env.get("OIDC_ISSUER") or (None if env.get("APP_ENV") == "production"
                                                   else local_url("oidc", env)),
            oidc_client_id=env.get("OIDC_CLIENT_ID", DEV_OIDC_CLIENT_ID),
            oidc_client_secret=env.get("OIDC_CLIENT_SECRET", DEV_OIDC_CLIENT_SECRET),
            oidc_audience=env.get("OIDC_AUDIENCE") or None,
            oidc_roles_claim=env.get("OIDC_ROLES_CLAIM", "groups"),
            oidc_role_map=parse_role_map(env.get("OIDC_ROLE_MAP", "")),
            oidc_clock_skew_seconds=int(env.get("OIDC_CLOCK_SKEW_SECONDS", "30")),
            jwks_cache_seconds=float(env.get("JWKS_CACHE_SECONDS", "300")),
            session_idle_minutes=int(env.get("SESSION_IDLE_MINUTES", "30")),
            # One process may relay for several services (the worker): <SERVICE>_SERVICE_KEY
            # gives each its own key, as <SERVICE>_DATABASE_URL gives each its database.
            service_key=env.get(f"{upper}_SERVICE_KEY") or env.get("SERVICE_KEY") or None,
            service_public_keys=env.get("SERVICE_PUBLIC_KEYS", ""),
            stripe_js_url=env.get("STRIPE_JS_URL")
            or (f"{stripe_base}/js.stripe.com/v3/" if stripe_base else "https://js.stripe.com/v3/"),
            posthog_api_key=env.get("POSTHOG_API_KEY") or None,
            posthog_host=env.get("POSTHOG_HOST", "https://us.i.posthog.com"),
            funnel_telemetry=env.get("FUNNEL_TELEMETRY", "on").strip().lower() not in ("off", "0", "false"),
            funnel_batch_ms=int(env.get("FUNNEL_BATCH_MS")
                                or ("200" if env.get("APP_ENV") == "production" else "0")),
            funnel_batch_max_rows=int(env.get("FUNNEL_BATCH_MAX_ROWS") or "1000"),
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
            sweep_retry_seconds=float(env.get("SWEEP_RETRY_SECONDS", "60")),
            sweep_retry_max_seconds=float(env.get("SWEEP_RETRY_MAX_SECONDS", "3600")),
            service_urls=service_urls,
            checkout_pages_url=env.get("CHECKOUT_PAGES_URL") or service_urls["checkout"],
        )
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse to start production with the development secrets."""
        if not self.is_production:
            return
        if self.auth_secret == DEV_AUTH_SECRET or len(self.auth_secret) < 32:
            raise RuntimeError("AUTH_SECRET must be set in production (32 bytes or more)")
        if self.clock_file:
            raise RuntimeError("CLOCK_FILE (time travel) is for development only")
        if self.oidc_issuer and not self.oidc_issuer.startswith("https://"):
            raise RuntimeError("OIDC_ISSUER must be an https URL in production")
        if self.oidc_issuer and self.oidc_client_secret == DEV_OIDC_CLIENT_SECRET:
            raise RuntimeError("OIDC_CLIENT_SECRET must be set in production")
