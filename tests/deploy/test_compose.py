"""deploy/compose.yaml: complete, ordered, healthy, and without secrets."""

from __future__ import annotations

import re
from typing import Any

import pytest

from deploy.entrypoint import DASHBOARD_PORT, plan
from services.common.config import DEFAULT_PORTS
from tests.deploy.helpers import (
    API_SERVICES,
    DEPLOY,
    SECRET_VALUE_PATTERNS,
    all_documented_variables,
    load_compose,
)
from tests.deploy.helpers import ROOT as REPO

APP_SERVICES = ("localstripe", "oidc", "stripe-webhook", "migrate", *API_SERVICES, "worker", "deliver",
                "dashboard")
ALL_SERVICES = ("postgres", "redis", "mailcatcher", *APP_SERVICES)
HEALTHCHECKED = ("postgres", "redis", "localstripe", "oidc", "mailcatcher", *API_SERVICES, "dashboard")
# The roles that migrate, fill (the worker's `experiments` job) or read the experiments' event store.
STORE_USERS = ("migrate", "worker", "dashboard")
REQUIRED_SECRETS = ("AUTH_SECRET", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "POSTGRES_PASSWORD",
                    "OIDC_CLIENT_SECRET", "SERVICE_PUBLIC_KEYS", "CHECKOUT_SERVICE_KEY", "TRIALS_SERVICE_KEY")
INTERPOLATION = re.compile(r"\$\{(\w+)(?:(:?[?-])([^}]*))?\}")


def compose_text() -> str:
    """compose.yaml without its comment lines."""
    lines = (DEPLOY / "compose.yaml").read_text().splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith("#"))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


def test_every_service_is_there_with_an_image(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert sorted(services) == sorted(ALL_SERVICES)
    app_image = services["checkout"]["image"]
    for name in APP_SERVICES:
        service = services[name]
        assert service["image"] == app_image, name
        assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}, name
        assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
    for name in ("postgres", "redis", "mailcatcher"):
        image = services[name]["image"]
        assert "build" not in services[name]
        # A specific version, never `latest` or a bare major.
        assert re.fullmatch(r"[\w./-]+:v?\d+\.\d+(\.\d+)?[\w.-]*", image), image
    assert services["postgres"]["image"].split(":")[1].startswith("15.")
    assert services["redis"]["image"].split(":")[1].startswith("7.")


def test_healthchecks_where_others_wait_for_them(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in HEALTHCHECKED:
        test = services[name]["healthcheck"]["test"]
        assert test[0] == "CMD" and len(test) > 1, name
    for service, port in (*DEFAULT_PORTS.items(), ("dashboard", DASHBOARD_PORT)):
        command = " ".join(services[service]["healthcheck"]["test"])
        assert f"http://127.0.0.1:{port}/healthz" in command
        assert command.startswith("CMD python -m deploy.probe ")  # the image has no curl
    for name, service in services.items():
        for dependency, condition in (service.get("depends_on") or {}).items():
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], f"{name} waits for {dependency}'s health"


def test_start_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in (*API_SERVICES, "worker", "deliver", "dashboard"):
        depends = services[name]["depends_on"]
        assert depends["migrate"] == {"condition": "service_completed_successfully"}, name
        assert depends["postgres"] == {"condition": "service_healthy"}, name
    assert services["checkout"]["depends_on"]["redis"] == {"condition": "service_healthy"}
    assert services["checkout"]["depends_on"]["localstripe"] == {"condition": "service_healthy"}
    assert services["deliver"]["depends_on"]["mailcatcher"] == {"condition": "service_healthy"}
    for name in (*API_SERVICES, "dashboard"):  # they fetch the provider's keys and metadata
        assert services[name]["depends_on"]["oidc"] == {"condition": "service_healthy"}, name
    for one_shot in ("migrate", "stripe-webhook"):
        assert services[one_shot]["restart"] == "no"


def test_roles_and_commands(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for service in API_SERVICES:
        assert services[service]["command"] == ["serve", service]
    assert services["migrate"]["command"] == ["migrate"]
    assert services["worker"]["command"] == ["worker"]
    assert services["deliver"]["command"] == ["deliver"]
    assert services["dashboard"]["command"] == ["dashboard"]
    # One worker runs every job, the experiments collector included.
    assert plan(services["worker"]["command"], {})[1:] == ["-m", "deploy.worker"]
    for name in APP_SERVICES:
        if "entrypoint" not in services[name]:
            plan(services[name]["command"], {})  # a role the image's entrypoint knows
    assert services["localstripe"]["entrypoint"] == ["localstripe"]
    assert services["localstripe"]["command"] == ["--port", "8420", "--from-scratch"]
    assert "'http://checkout:8001/stripe/webhooks'" in services["stripe-webhook"]["command"][0]


def test_ports_match_the_documented_defaults(compose: dict[str, Any]) -> None:
    services = compose["services"]
    config = (REPO / "docs" / "configuration.md").read_text()
    for service in API_SERVICES:
        port = DEFAULT_PORTS[service]
        assert services[service]["ports"] == [f"127.0.0.1:{port}:{port}"]
        assert str(port) in config
    assert services["localstripe"]["ports"] == ["127.0.0.1:8420:8420"]
    assert services["dashboard"]["ports"] == [f"127.0.0.1:{DASHBOARD_PORT}:{DASHBOARD_PORT}"]
    assert str(DASHBOARD_PORT) in (REPO / "docs" / "deployment.md").read_text()
    assert "8420" in config  # LOCALSTRIPE_PORT's default
    env = services["checkout"]["environment"]
    for service in API_SERVICES:
        assert env[f"{service.upper()}_URL"] == f"http://{service}:{DEFAULT_PORTS[service]}"
    assert env["STRIPE_API_BASE"] == "http://localstripe:8420"
    assert env["SMTP_HOST"] == "mailcatcher" and env["SMTP_PORT"] == "1025"  # Mailpit's SMTP port
    assert env["RATELIMIT_STORAGE_URI"] == "redis://redis:6379/0"


def test_app_environment_names_are_the_documented_ones(compose: dict[str, Any]) -> None:
    documented = all_documented_variables()
    for name in APP_SERVICES:
        environment = compose["services"][name].get("environment") or {}
        assert set(environment) - documented == set(), name
    env = compose["services"]["checkout"]["environment"]
    assert env["APP_ENV"] == "production"
    for service in API_SERVICES:
        url = env[f"{service.upper()}_DATABASE_URL"]
        assert url.startswith("postgresql://") and url.endswith(f"@postgres:5432/{service}")
    init = (DEPLOY / "postgres-init" / "01-databases.sql").read_text()
    assert sorted(re.findall(r"CREATE DATABASE (\w+);", init)) == sorted((*API_SERVICES, "experiments"))


def test_the_experiments_store_is_its_own_database_for_the_roles_that_use_it(compose: dict[str, Any]) -> None:
    from deploy.migrate import store_problem

    services = compose["services"]
    for name in STORE_USERS:
        env = services[name]["environment"]
        url = env["EXPERIMENTS_DATABASE_URL"]
        assert url.startswith("postgresql://") and url.endswith("@postgres:5432/experiments"), name
        # Everything else the services get too (the worker's collector reads all three databases).
        assert env.items() >= services["checkout"]["environment"].items(), name
        # What `migrate` checks before migrating the store (no secret is needed to tell).
        assert store_problem({**env, "APP_ENV": "development"}) is None
    for name in (*API_SERVICES, "deliver"):
        assert "EXPERIMENTS_DATABASE_URL" not in services[name]["environment"], name


def test_required_secrets_must_be_set(compose: dict[str, Any]) -> None:
    text = compose_text()
    uses = INTERPOLATION.findall(text)
    for secret in REQUIRED_SECRETS:
        forms = {(operator, bool(message.strip())) for name, operator, message in uses if name == secret}
        assert forms == {(":?", True)}, f"{secret} must be ${{{secret}:?message}} everywhere"
    for pattern in SECRET_VALUE_PATTERNS:
        assert not pattern.search(text), pattern.pattern
    env = compose["services"]["checkout"]["environment"]
    for secret in ("AUTH_SECRET", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"):
        assert env[secret].startswith(f"${{{secret}:?")


def test_env_example_lists_every_variable_and_no_secret(compose: dict[str, Any]) -> None:
    example = {}
    for line in (DEPLOY / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            example[name] = value
    used = {name for name, _, _ in INTERPOLATION.findall(compose_text())}
    assert used == set(example)
    for secret in ("AUTH_SECRET", "STRIPE_WEBHOOK_SECRET", "POSTGRES_PASSWORD", "POSTHOG_API_KEY", "SENTRY_DSN",
                   "OIDC_CLIENT_SECRET", "CHECKOUT_SERVICE_KEY", "TRIALS_SERVICE_KEY", "SERVICE_PUBLIC_KEYS"):
        assert example[secret] == "", f"{secret} must be chosen, not copied"
    assert used - all_documented_variables() == set()
