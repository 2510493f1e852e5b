"""The type checker runs with the suite: `make test` (and CI) fail on a type error.

mypy reads its settings from pyproject.toml ([tool.mypy]: which packages, which
of them strictly) and keeps its cache in .mypy_cache, so after the first run
(about 40 s) only changed modules are checked again. `make typecheck` runs the
same check alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_code_type_checks() -> None:
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True,
                            timeout=600)
    report = (result.stdout + result.stderr).strip()
    assert result.returncode == 0, f"mypy found type errors (run `make typecheck`):\n{report}"
