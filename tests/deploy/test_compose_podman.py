"""deploy/compose.yaml as podman-compose 1.0.3 (bookworm's) renders it for `make
compose-up`, with the stand-ins of deploy/podman/compose.standins.yaml, while
Docker Compose renders the file alone (test_compose.py)."""

from __future__ import annotations

import copy
from typing import Any

import yaml

from tests.deploy.helpers import DEPLOY, load_compose
from tests.deploy.test_compose import HEALTHCHECKED, compose_text

STANDINS = DEPLOY / "podman" / "compose.standins.yaml"
THIRD_PARTY = ("postgres", "redis", "mailcatcher")


def merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Compose's merge of a second -f file: mappings merge, anything else is replaced."""
    result = copy.deepcopy(base)
    for key, value in override.items():
        result[key] = merged(result[key], value) if isinstance(value, dict) and key in result else value
    return result


def test_the_standins_replace_only_the_third_party_images() -> None:
    override = yaml.safe_load(STANDINS.read_text())
    assert set(override) == {"services"} and set(override["services"]) == set(THIRD_PARTY)
    docker, podman = load_compose(), merged(load_compose(), override)
    for name, service in podman["services"].items():
        if name in THIRD_PARTY:
            assert service["image"].startswith("localhost/devops-checkout-standin-"), name
            assert docker["services"][name]["image"] != service["image"]
            assert {**service, "image": None} == {**docker["services"][name], "image": None}
        else:
            assert service == docker["services"][name], name


def test_each_standin_has_what_its_healthcheck_runs() -> None:
    compose = load_compose()["services"]
    standins = DEPLOY / "podman" / "standins"
    tools = {"postgres": "postgresql-15", "redis": "redis-server", "mailcatcher": "COPY mailpit.py /mailpit"}
    for name, needs in tools.items():
        assert needs in (standins / f"{name}.Containerfile").read_text(), name
    assert compose["mailcatcher"]["healthcheck"]["test"][1] == "/mailpit"
    assert compose["postgres"]["healthcheck"]["test"][1] == "pg_isready"
    assert compose["redis"]["healthcheck"]["test"][1] == "redis-cli"


def test_what_podman_compose_1_0_3_would_mangle_is_absent() -> None:
    services = load_compose()["services"]
    # It quotes a healthcheck word by word into one sh line: no argument may hold a space.
    for name in HEALTHCHECKED:
        for word in services[name]["healthcheck"]["test"]:
            assert not set(word) & set(" '\"();"), (name, word)
    # It leaves `${VAR:-}` (an empty default) uninterpolated.
    assert ":-}" not in compose_text()
