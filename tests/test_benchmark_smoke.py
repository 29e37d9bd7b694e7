"""The benchmark runs end to end at a tiny scale (a smoke test, not a measurement)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_runs_at_tiny_scale() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--scale", "0.005",
         "--tools", "raw,hibernate,dill", "--warm"], capture_output=True, text=True, check=False,
        timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split("|")[1].strip(): line for line in proc.stdout.splitlines()
            if line.startswith("| ") and not line.startswith("| tool")}
    assert set(rows) == {"raw", "hibernate", "dill"}
    assert "failed" not in rows["hibernate"] and "failed" not in rows["dill"]
