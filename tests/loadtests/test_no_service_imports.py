"""Load tests are pure clients: nothing under loadtests/ imports the services'
code, the libraries the services are built on, or the experiments app; they
reach the stack over HTTP only."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("services", "experiments", "flags", "contracts", "persistence", "funnel", "identity",
             "messaging")


def imported_modules(path: Path) -> list[str]:
    """Every module a file imports: import statements anywhere in it, and
    importlib.import_module / __import__ calls with a literal name."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(node.module)
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("import_module", "__import__")):
            found.append(node.args[0].value)
    return found


def test_nothing_under_loadtests_imports_service_code() -> None:
    files = sorted((ROOT / "loadtests").rglob("*.py"))
    assert len(files) > 5
    offending = [f"{path.relative_to(ROOT)}: {module}" for path in files for module in imported_modules(path)
                 if module.split(".")[0] in FORBIDDEN]
    assert offending == []


def test_the_check_sees_every_way_to_import(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("import identity.auth\nfrom experiments import flags\n"
                     "def f():\n    from services.checkout import seed\n"
                     "import importlib\nimportlib.import_module('services.trials')\n")
    assert [m.split(".")[0] for m in imported_modules(probe)] == [
        "identity", "experiments", "importlib", "services", "services"]
    assert {"identity", "experiments", "services"} <= set(FORBIDDEN)
