"""The environment section of a hand-built file (whole-session issue, item 5, the way an
attacker would use it): options that name modules to import, warning categories from
modules not imported, a working directory and sys.path entries pointing at the attacker's
code. Loaded with ``environment=True`` from an untrusted file: no canary module is imported,
no option that imports or runs anything is set, the directory and path are untouched; the
display options still come back."""

from __future__ import annotations

import json

import hibernate

from .craft import manifest_of, rewrap

CANARY = """
open("IMPORTED_CANARY", "w").write("the file's module ran")

class Boom(Warning):
    pass
"""


def test_a_hostile_environment_imports_and_runs_nothing(fresh) -> None:
    evil = fresh.path / "evil"
    evil.mkdir()
    (fresh.path / "canary_mod.py").write_text(CANARY)  # importable by the loading script
    hibernate.save(fresh.path / "s.hib", {"x": 1})
    data = (fresh.path / "s.hib").read_bytes()
    m = manifest_of(data)
    m["environment"] = {
        "options": {"pandas": {"plotting.backend": "canary_mod", "display.max_rows": 9,
                               # set_option reads its key as a pattern
                               "display.x_nomatch|plotting.backend": "canary_mod"},
                    "numpy": {"print": {"formatter": {"all": "x"}}},
                    "matplotlib": {"rcParams": {"animation.ffmpeg_path": "evil/run.sh"}}},
        "warnings": [["error", None, "canary_mod.Boom", None, 0]],
        "cwd": str(evil), "sys_path": [str(evil)],
        "ipython": {"extensions": ["canary_mod"]},
        # the attacker's own key, for a next load of another of their files
        "env_vars": {"HIBERNATE_KEY": "00" * 16, "PYTHONPATH": str(evil)},
    }
    (fresh.path / "hostile.hib").write_bytes(rewrap(data, json.dumps(m).encode()))
    got = fresh.json("""
        import json, os, sys
        import numpy, pandas as pd
        import hibernate
        start = os.getcwd()
        r = hibernate.load("hostile.hib", {}, environment=True, data_only=True)
        print(json.dumps({
            "outcome": dict(r.environment_restored),
            "backend": pd.get_option("plotting.backend"),
            "rows": pd.get_option("display.max_rows"),
            "imported": "canary_mod" in sys.modules,
            "cwd_same": os.getcwd() == start,
            "key": os.environ.get("HIBERNATE_KEY"), "pythonpath": os.environ.get("PYTHONPATH"),
            "arrays_print": repr(__import__("numpy").arange(2)),
            "path": any("evil" in p for p in sys.path)}))
    """)
    assert not (fresh.path / "IMPORTED_CANARY").exists()
    assert got["imported"] is False and got["cwd_same"] and not got["path"], got
    assert got["backend"] == "matplotlib" and got["rows"] == 9, got
    outcome = got["outcome"]
    assert "plotting.backend" in outcome["options"] and "trusted files only" in outcome["options"]
    assert "trusted files only" in outcome["cwd"] and "trusted files only" in outcome["sys_path"]
    assert "trusted files only" in outcome["ipython"]
    assert "trusted files only" in outcome["warnings"] and "trusted files only" in outcome[
        "env_vars"]
    assert got["key"] != "00" * 16 and got["pythonpath"] is None, got
    assert got["arrays_print"] == "array([0, 1])"
