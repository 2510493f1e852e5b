"""Which way the imports go (docs/architecture.md): each contract names some modules and what
they must not import. Imports are read from the source with `ast` (tests/imports.py), lazy
ones inside functions included, so a contract also holds for code that only runs later.

A new rule is one more `Contract` in CONTRACTS."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.imports import first_party_sources, imports


@dataclass(frozen=True)
class Contract:
    why: str
    # The modules the rule is about; a package stands for all its modules.
    modules: tuple[str, ...]
    # What they must not import; a package stands for all its modules.
    forbidden: tuple[str, ...]


# The libraries the services build on (docs/architecture.md).
LIBRARIES = ("contracts", "persistence", "identity", "flags", "funnel", "messaging")


def others(*allowed: str) -> tuple[str, ...]:
    """Every library but `allowed`: what a library must not import besides the services and the app."""
    return tuple(library for library in LIBRARIES if library not in allowed)


CONTRACTS = (
    Contract("the flag library is loaded by every service: it imports no service and no app",
             modules=("flags",), forbidden=("services", "experiments", *others("flags"))),
    Contract("the event contracts are plain Python that any producer or consumer can import",
             modules=("contracts",), forbidden=("services", "experiments", *others("contracts"))),
    Contract("the database kit imports nothing of this repository",
             modules=("persistence",), forbidden=("services", "experiments", *others("persistence"))),
    Contract("sign-in imports nothing of this repository: the HTTP edge maps its AuthError",
             modules=("identity",), forbidden=("services", "experiments", *others("identity"))),
    Contract("funnel telemetry builds on the database kit and the flags, never on a service or the kit",
             modules=("funnel",), forbidden=("services", "experiments", *others("funnel", "persistence", "flags"))),
    Contract("messaging builds on the service kit and imports no service and no app",
             modules=("messaging",),
             forbidden=("services.checkout", "services.trials", "services.notifications", "experiments")),
    Contract("the service kit does not import messaging, which is built on it",
             modules=("services.common",), forbidden=("messaging",)),
    Contract("the shared kit does not know the experiments app, which is built on it",
             modules=("services.common",), forbidden=("experiments",)),
    Contract("a domain is plain Python: it raises domain errors and knows no HTTP, Flask or database",
             modules=("services.checkout.domain", "services.trials.domain", "services.notifications.domain"),
             forbidden=("services.common.problems", "services.common.web", "flask", "flask_smorest",
                        "werkzeug", "sqlalchemy")),
    Contract("use cases return domain results and raise domain errors: the HTTP edge picks the status",
             modules=("services.checkout.usecases", "services.trials.usecases",
                      "services.notifications.usecases"),
             forbidden=("services.common.problems", "services.common.web", "flask", "flask_smorest",
                        "werkzeug")),
    Contract("the domain errors are plain Python, for the domains to raise",
             modules=("services.common.errors",), forbidden=("services.common.problems", "flask",
                                                              "werkzeug")),
    Contract("the shared kit imports no service: what one service alone uses lives in it",
             modules=("services.common",),
             forbidden=("services.checkout", "services.trials", "services.notifications")),
    Contract("checkout talks to the other services over HTTP and events, never their code",
             modules=("services.checkout",), forbidden=("services.trials", "services.notifications")),
    Contract("trials talks to the other services over HTTP and events, never their code",
             modules=("services.trials",), forbidden=("services.checkout", "services.notifications")),
    Contract("notifications hears the other services' events, never imports their code",
             modules=("services.notifications",), forbidden=("services.checkout", "services.trials")),
    Contract("the services run without the development tools (make run, time travel, the sinks)",
             modules=("services",), forbidden=("devtools",)),
    Contract("no part of services/ wires the experiments app: its collector is its own worker",
             modules=("services",), forbidden=("experiments",)),
)


def _within(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == package or name.startswith(package + ".") for package in packages)


def violations(contract: Contract, sources: dict[str, Path]) -> tuple[list[str], list[str]]:
    """(the modules the contract covers, "<module> imports <name>" for each import it forbids)."""
    covered = sorted(module for module in sources if _within(module, contract.modules))
    broken = []
    for module in covered:
        names = {name for name in imports(sources[module], module) if _within(name, contract.forbidden)}
        # `from a import b` gives a and a.b: name the module once, not each name taken from it.
        broken += [f"{module} imports {name}" for name in sorted(names) if name.rpartition(".")[0] not in names]
    return covered, broken


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda contract: contract.why)
def test_imports_go_one_way(contract: Contract) -> None:
    covered, broken = violations(contract, first_party_sources())
    assert covered, f"no module matches {contract.modules}: the contract checks nothing"
    assert not broken, f"{contract.why}:\n" + "\n".join(broken)


def test_a_forbidden_import_is_found_however_it_is_written(tmp_path: Path) -> None:
    """Lazy and relative imports count; a name that only shares a prefix does not."""
    (tmp_path / "kit").mkdir()
    sources = {"kit": tmp_path / "kit" / "__init__.py", "kit.lazy": tmp_path / "kit" / "lazy.py",
               "kit.relative": tmp_path / "kit" / "relative.py", "kit.lookalike": tmp_path / "kit" / "lookalike.py"}
    sources["kit"].write_text("")
    sources["kit.lazy"].write_text("def later():\n    from app.store import events\n")
    sources["kit.relative"].write_text("from ..app import dashboard\n")
    sources["kit.lookalike"].write_text("import application\n")
    contract = Contract("a kit imports no app", modules=("kit",), forbidden=("app",))
    covered, broken = violations(contract, sources)
    assert covered == ["kit", "kit.lazy", "kit.lookalike", "kit.relative"]
    assert broken == ["kit.lazy imports app.store", "kit.relative imports app"]
