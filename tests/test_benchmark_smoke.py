"""The benchmark runs end to end at a tiny scale, both sessions (a smoke test, not a
measurement), and the analyst session has the sharing it is meant to have."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_runs_at_tiny_scale() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--session", "both",
         "--scales", "0.005", "--repeat", "1", "--tools", "raw,hibernate,pickle,dill",
         "--warm", "--quiet"], capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr
    sections = proc.stdout.split("Session `")[1:]
    assert [s.split("`")[0] for s in sections] == ["classic", "analyst"]
    for section in sections:
        rows = {line.split("|")[1].strip(): line for line in section.splitlines()
                if line.startswith("| ") and not line.startswith(("| tool", "| target"))}
        tools = {"raw", "hibernate", "pickle", "dill"}
        assert tools <= set(rows)
        for tool in tools:
            assert "failed" not in rows[tool], rows[tool]
        targets = [line for line in section.splitlines() if line.startswith("| ")
                   and line.rstrip().endswith(("| met |", "| **not met** |"))]
        assert len(targets) == 6, section  # every target measured (none n/a)


def test_analyst_session_shares_what_it_should() -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import numpy as np
        import pandas as pd
        from session import build_session, data_bytes, data_names
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    ns: dict = {"__name__": "__main__"}
    build_session("analyst", ns, 0.002)
    df = ns["df"]
    assert ns["frames"]["raw"] is df and ns["score"].index is df.index
    assert ns["X"] is ns["features"] and ns["recent"].base is ns["features"]
    assert isinstance(ns["rng"], np.random.Generator)
    assert df["customer"].dtype == object and df["customer"].isna().any()
    assert str(df["qty"].dtype) == "Int64" and df["qty"].isna().any()
    assert isinstance(df["segment"].dtype, pd.CategoricalDtype)
    assert str(df["ordered"].dt.tz) == "Europe/Berlin"
    assert ns["zscore"].__module__ == "__main__" and ns["fc"].predict(1.0) == 0.875
    again: dict = {"__name__": "__main__"}
    build_session("analyst", again, 0.002)
    pd.testing.assert_frame_equal(df, again["df"])
    assert np.array_equal(ns["sim"], again["sim"]) and ns["events"] == again["events"]
    # shared objects counted once
    names = data_names("analyst")
    assert data_bytes(ns, names) < sum(data_bytes(ns, [n]) for n in names)
