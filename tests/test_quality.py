"""Static discipline: ruff and mypy --strict pass on the package (run by `make test`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


CHECKED = ["src", "tests", "benchmarks", "examples", "fuzz", "scripts"]


@pytest.mark.parametrize("tool", [["ruff", "check", *CHECKED], ["mypy"]])
def test_static_checks_pass(tool: list[str]) -> None:
    exe = shutil.which(tool[0], path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip(f"{tool[0]} is not installed in this environment")
    proc = subprocess.run([exe, *tool[1:]], cwd=ROOT, capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
