"""deploy/Dockerfile, read as text (no Docker engine is needed to check its shape)."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import sys
import tomllib
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from identity.auth import issue_token
from services.checkout.app import create_app
from services.common.config import Settings
from tests.deploy.helpers import DEPLOY, ROOT
from tests.imports import FIRST_PARTY, imports, module_name

DOCKERFILE = DEPLOY / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined, current = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.lstrip().startswith("#"):
            continue
        current += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            joined.append(current.strip())
            current = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1] if " " in text else "") for text in joined]


def stages() -> dict[str, list[tuple[str, str]]]:
    result: dict[str, list[tuple[str, str]]] = {}
    name = None
    for instruction, args in instructions():
        if instruction == "FROM":
            name = args.split(" AS ")[-1].strip().lower()
            result[name] = []
        if name:
            result[name].append((instruction, args))
    return result


def base_image() -> str:
    [default] = [args.partition("=")[2] for instruction, args in instructions()
                 if instruction == "ARG" and args.startswith("PYTHON_IMAGE=")]
    return default


def test_base_is_a_pinned_python_311_slim_bookworm() -> None:
    image = base_image()
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", image), image
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == ">=3.11,<3.12"
    for stage in stages().values():
        assert stage[0] == ("FROM", f"${{PYTHON_IMAGE}} AS {stage[0][1].split(' AS ')[1]}")


def test_multi_stage_builder_installs_the_pinned_tree_into_a_venv() -> None:
    builder = stages()["builder"]
    runs = " ".join(args for instruction, args in builder if instruction == "RUN")
    copies = [args for instruction, args in builder if instruction == "COPY"]
    assert "pyproject.toml constraints.txt ./" in copies
    assert "['project']['dependencies']" in runs  # runtime dependencies only, not the dev extra
    assert "pip wheel --wheel-dir /wheels -c constraints.txt" in runs
    assert "python -m venv /opt/venv" in runs
    assert "--no-index --find-links /wheels" in runs


def test_final_stage_has_the_venv_code_and_no_build_tools() -> None:
    runtime = stages()["runtime"]
    text = " ".join(args for _, args in runtime)
    assert ("COPY", "--from=builder /opt/venv /opt/venv") in runtime
    for tool in ("build-essential", "gcc", "apt-get", "pip install", "/wheels"):
        assert tool not in text, tool
    env = " ".join(args for instruction, args in runtime if instruction == "ENV")
    for setting in ("PYTHONUNBUFFERED=1", "PATH=/opt/venv/bin:$PATH", "PYTHONPATH=/app"):
        assert setting in env
    assert ("WORKDIR", "/app") in runtime


def test_the_image_defaults_to_production_and_development_must_be_asked_for() -> None:
    runtime = stages()["runtime"]
    env = dict(pair.split("=", 1) for instruction, args in runtime if instruction == "ENV"
               for pair in shlex.split(args))
    assert env["APP_ENV"] == "production"
    # So a container started without settings refuses the development secrets ...
    with pytest.raises(RuntimeError, match="AUTH_SECRET"):
        Settings.from_env("checkout", {"APP_ENV": env["APP_ENV"]})
    # ... and, given real ones, takes no development (HS256) token.
    real = {"APP_ENV": env["APP_ENV"], "AUTH_SECRET": "s" * 40, "STRIPE_WEBHOOK_SECRET": "whsec_" + "x" * 30,
            "CHECKOUT_DATABASE_URL": "sqlite://"}
    app = create_app(Settings.from_env("checkout", real))
    dev_token = issue_token("s" * 40, 1, "a@b.test", ("admin",), now=datetime.now(UTC))
    response = app.test_client().get("/namespaces", headers={"Authorization": f"Bearer {dev_token}"})
    assert (response.status_code, response.json["code"]) == (401, "invalid_token")  # type: ignore[index]
    app.extensions["checkout"].ctx.close()


def test_runs_as_a_numeric_non_root_user_with_the_entrypoint() -> None:
    runtime = stages()["runtime"]
    [user] = [args for instruction, args in runtime if instruction == "USER"]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000  # numeric, so runAsNonRoot can verify it
    assert runtime[-2:] == [("ENTRYPOINT", '["python", "-m", "deploy.entrypoint"]'), ("CMD", '["--help"]')]
    assert json.loads(runtime[-2][1]) == ["python", "-m", "deploy.entrypoint"]
    # Everything after USER runs unprivileged; nothing needs root then.
    after = runtime[[i for i, (instruction, _) in enumerate(runtime) if instruction == "USER"][0]:]
    assert not [args for instruction, args in after if instruction == "RUN"]


def _allowed(path: str, patterns: list[str]) -> bool:
    """Does the .dockerignore (allow-list style) let `path` into the build context?"""
    allowed = True
    for pattern in patterns:
        negated = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(path, pattern) or path.startswith(pattern + "/"):
            allowed = negated
    return allowed


def test_everything_copied_exists_and_is_in_the_build_context() -> None:
    patterns = [line for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
                if line and not line.startswith("#")]
    sources = []
    for instruction, args in instructions():
        if instruction == "COPY" and not args.startswith("--from"):
            *srcs, _destination = args.split()
            sources += srcs
    assert "services/" in sources and "deploy/entrypoint.py" in sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert _allowed(source.rstrip("/"), patterns), f"{source} is excluded by Dockerfile.dockerignore"
    assert not _allowed("deploy/.env", patterns)
    assert not _allowed(".venv/bin/python", patterns)
    assert not _allowed("var/checkout.db", patterns)


def test_every_module_the_entrypoint_runs_is_in_the_image() -> None:
    copied = " ".join(args for instruction, args in instructions() if instruction == "COPY")
    for module in ("entrypoint", "gunicorn.conf", "migrate", "__init__"):
        assert f"deploy/{module}.py" in copied
    assert "services/ services/" in copied  # the sweeps (services/*/sweep.py) come with the code
    assert "flags/ flags/" in copied  # the flag library every service imports
    assert "experiments/ experiments/" in copied  # the payload, the store, the dashboard


def _dockerignore() -> list[str]:
    return [line for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
            if line and not line.startswith("#")]


def image_files() -> set[str]:
    """The repository files the runtime stage's COPY instructions put under /app."""
    patterns = _dockerignore()
    files: set[str] = set()
    for instruction, args in stages()["runtime"]:
        if instruction != "COPY" or args.startswith("--from"):
            continue
        *sources, _destination = args.split()
        for source in sources:
            path = ROOT / source
            candidates = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
            for candidate in candidates:
                relative = candidate.relative_to(ROOT).as_posix()
                if "__pycache__" not in relative and _allowed(relative, patterns):
                    files.add(relative)
    return files


def test_the_flags_and_experiments_packages_and_their_data_are_in_the_image() -> None:
    files = image_files()
    flag_library = {p.relative_to(ROOT).as_posix() for p in (ROOT / "flags").glob("*.py")}
    assert "flags/client.py" in flag_library and flag_library <= files
    for needed in ("experiments/__init__.py", "experiments/dashboard.py", "experiments/store.py",
                   "experiments/cli.py", "experiments/__main__.py",
                   "experiments/payload.json", "experiments/metrics.toml",
                   "experiments/migrations/env.py", "experiments/migrations/script.py.mako",
                   "deploy/migrate.py"):
        assert needed in files, needed
    for folder in ("experiments/templates", "experiments/migrations/versions"):
        expected = {p.relative_to(ROOT).as_posix() for p in (ROOT / folder).iterdir() if p.is_file()}
        assert expected and expected <= files, folder
    # What the services find relative to /app (services/common/config.py ROOT).
    from services.common.config import ROOT as APP_ROOT
    from services.common.config import Settings

    default_payload = Path(Settings(service="checkout", database_url="sqlite://").growthbook_payload_file)
    assert default_payload.relative_to(APP_ROOT).as_posix() in files
    assert not any(f.startswith(("loadtests/", "benchmarks/", "tests/")) for f in files)
    runs = " ".join(args for instruction, args in stages()["runtime"] if instruction == "RUN")
    assert "compileall" in runs and " flags" in runs and " experiments" in runs


def test_exposes_the_dashboard_port_with_the_services() -> None:
    from deploy.entrypoint import DASHBOARD_PORT
    from services.common.config import DEFAULT_PORTS

    [exposed] = [args.split() for instruction, args in instructions() if instruction == "EXPOSE"]
    assert sorted(int(port) for port in exposed) == sorted((*DEFAULT_PORTS.values(), DASHBOARD_PORT))


def _runtime_distributions() -> set[str]:
    """The runtime dependencies (pyproject.toml's, not the dev extra, and deploy/requirements.txt)
    with everything they require, by normalised distribution name."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pending = [Requirement(line) for line in [*project["dependencies"], *REQUIREMENTS]]
    seen: set[str] = set()
    while pending:
        requirement = pending.pop()
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        extras = sorted(requirement.extras)
        key = f"{name}[{','.join(extras)}]"
        if key in seen:
            continue
        seen.add(key)
        for line in metadata.distribution(requirement.name).requires or []:
            needed = Requirement(line)
            if needed.marker is None or any(needed.marker.evaluate({"extra": extra}) for extra in extras or [""]):
                pending.append(needed)
    return {key.partition("[")[0] for key in seen}


def test_every_module_in_the_image_imports_only_what_the_image_has() -> None:
    """A module the image holds must not import first-party code it lacks (loadtests, a file
    left out) or a package that is only a dev dependency (PyYAML, pytest, locust ...)."""
    files = image_files()
    modules = {module_name(f) for f in files if f.endswith(".py")}
    runtime = _runtime_distributions()
    providers = metadata.packages_distributions()
    problems = []
    for relative in sorted(f for f in files if f.endswith(".py")):
        missing: set[str] = set()
        for name in sorted(imports(ROOT / relative, module_name(relative))):
            top = name.split(".")[0]
            if top in FIRST_PARTY:
                parent = name.rpartition(".")[0]
                if name not in modules and parent not in modules and parent not in missing:
                    missing.add(name)
                    problems.append(f"{relative}: {name} is not in the image")
            elif top not in sys.stdlib_module_names and top != "__future__":
                distributions = {re.sub(r"[-_.]+", "-", d).lower() for d in providers.get(top, [])}
                if not distributions & runtime:
                    problems.append(f"{relative}: {name} is not a runtime dependency")
    assert not problems, "\n".join(problems)
    assert {"deploy.worker", "services.checkout.worker", "services.trials.worker", "experiments.collector",
            "experiments.dashboard", "experiments.store", "deploy.entrypoint"} <= modules


REQUIREMENTS = [line for line in (DEPLOY / "requirements.txt").read_text().splitlines()
                if line and not line.startswith("#")]


def test_gunicorn_is_among_the_deploy_requirements() -> None:
    assert [line.split("==")[0] for line in REQUIREMENTS] == ["gunicorn"]


@pytest.mark.parametrize("requirement", REQUIREMENTS)
def test_deploy_requirements_are_pinned_and_match_what_the_tests_ran(requirement: str) -> None:
    name, _, version = requirement.partition("==")
    assert version, f"{requirement} must be pinned"
    assert metadata.version(name) == version
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for dependency in dependencies:
        if re.split(r"[=<>\[ ]", dependency)[0].lower() == name.lower():
            assert dependency == requirement, "pyproject.toml and deploy/requirements.txt disagree"
