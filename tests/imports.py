"""What first-party modules import, read from their source with `ast` (nothing is imported).

Shared by the image check (tests/deploy/test_dockerfile.py) and the import contracts
(tests/test_import_contracts.py)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The repository's top-level packages: services, flags, experiments, loadtests, deploy, tests ...
FIRST_PARTY = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()}


def module_name(relative: str) -> str:
    """`persistence/db.py` -> `persistence.db`; a package's `__init__.py` is the package."""
    parts = relative.removesuffix(".py").split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, module: str) -> set[str]:
    """Every module `path` imports (anywhere in it, lazily imported ones too), as dotted names;
    `from a import b` gives both a and a.b (b may be a module or a name)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return found


def first_party_sources() -> dict[str, Path]:
    """Every Python file of the first-party packages, by module name."""
    sources: dict[str, Path] = {}
    for package in sorted(FIRST_PARTY):
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if "__pycache__" not in relative:
                sources[module_name(relative)] = path
    return sources
