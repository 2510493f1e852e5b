"""Shared code is shared: every module of the service kit (services/common) and of the
libraries the services build on is reached by at least two of the three services, through
their own imports or through the kit's. What only one service uses belongs in that service
(#14, docs/architecture.md)."""

from __future__ import annotations

from pathlib import Path

from tests.imports import first_party_sources, imports

SERVICES = ("checkout", "trials", "notifications")
SHARED = ("services.common", "contracts", "persistence", "identity", "flags", "funnel", "messaging")


def _within(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == package or name.startswith(package + ".") for package in packages)


def reached_from(roots: list[str], sources: dict[str, Path]) -> set[str]:
    """Every first-party module `roots` import, directly or through the modules they import."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        module = todo.pop()
        if module in seen or module not in sources:
            continue
        seen.add(module)
        todo += [name for name in imports(sources[module], module) if name in sources]
    return seen


def users(sources: dict[str, Path]) -> dict[str, set[str]]:
    """{shared module: the services that reach it}."""
    found: dict[str, set[str]] = {m: set() for m in sources if _within(m, SHARED)}
    for service in SERVICES:
        roots = [m for m in sources if _within(m, (f"services.{service}",))]
        for module in reached_from(roots, sources):
            if module in found:
                found[module].add(service)
    return found


def test_every_shared_module_is_used_by_two_services() -> None:
    sources = first_party_sources()
    found = users(sources)
    assert len(found) > 40, "the check sees too few shared modules"
    # A package's __init__ holds only its docstring: the modules in it are what is used.
    lonely = {module: sorted(services) for module, services in found.items()
              if len(services) < 2 and sources[module].name != "__init__.py"}
    assert lonely == {}, "used by fewer than two services; move it into the one that uses it"


def test_the_check_follows_imports_through_the_kit(tmp_path: Path) -> None:
    files = {"services.checkout.app": "from services.common import web\n",
             "services.trials.app": "import services.common.web\n",
             "services.common.web": "from services.common import guard\n",
             "services.common.guard": "",
             "services.common.lonely": "",
             "services.notifications.app": "import services.common.lonely\n"}
    sources = {}
    for module, text in files.items():
        path = tmp_path / f"{module}.py"
        path.write_text(text)
        sources[module] = path
    found = users(sources)
    assert found["services.common.guard"] == {"checkout", "trials"}
    assert found["services.common.lonely"] == {"notifications"}
