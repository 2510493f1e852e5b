"""deploy/Dockerfile, read as text (no Docker engine is needed to check its shape)."""

from __future__ import annotations

import fnmatch
import json
import re
import tomllib
from importlib import metadata

import pytest

from tests.deploy.helpers import DEPLOY, ROOT

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
    for module in ("entrypoint", "gunicorn.conf", "__init__"):
        assert f"deploy/{module}.py" in copied
    assert "services/ services/" in copied  # the sweeps (services/*/sweep.py) come with the code


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
