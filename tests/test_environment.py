"""The session's environment (whole-session issue, item 5): saved as its own manifest
section when asked, shown by inspect, put back in a fresh process: options, random states
(the next numbers are the ones the saving session would have drawn), warning filters, named
environment variables (never the others), working directory and sys.path (trusted only)."""

from __future__ import annotations

import pytest

import hibernate

STRANGER = {"HIBERNATE_KEY": "5354524e47522d0f1e2d3c4b5a69780f1e2d3c4b5a6978"}

SAVE = """
import json, os, random, sys, warnings
import numpy as np, pandas as pd
import hibernate
pd.set_option("display.max_rows", 7)
np.set_printoptions(precision=3)
np.seterr(divide="ignore")
random.seed(5); random.random()
np.random.seed(9); np.random.rand()
warnings.filterwarnings("ignore", message="noisy", category=DeprecationWarning)
os.makedirs("work", exist_ok=True)
os.chdir("work")
sys.path.append("/opt/session-lib")
os.environ["PROJECT_DB"] = "sales.db"
os.environ["SECRET_TOKEN"] = "do-not-save-me"
x = 1
hibernate.save("../env.hib", environment=True, env_vars=["PROJECT_*"])
print(json.dumps({"next": [random.random(), float(np.random.rand())]}))
"""

LOAD = """
import json, os, random, sys, warnings
import numpy as np, pandas as pd
import hibernate
r = hibernate.load("env.hib", environment=True, data_only=DATA_ONLY)
first = warnings.filters[0]
print(json.dumps({
    "outcome": dict(r.environment_restored), "x": x,
    "next": [random.random(), float(np.random.rand())],
    "rows": pd.get_option("display.max_rows"), "precision": np.get_printoptions()["precision"],
    "divide": np.geterr()["divide"], "cwd": os.path.basename(os.getcwd()),
    "path_added": "/opt/session-lib" in sys.path, "own_path_first": sys.path[0] == PATH0,
    "db": os.environ.get("PROJECT_DB"), "secret": os.environ.get("SECRET_TOKEN"),
    "filter": [first[0], first[1].pattern if first[1] else None, first[2].__name__]}))
"""


def _load(fresh, data_only: bool, env: dict | None = None) -> dict:  # type: ignore[type-arg]
    code = ("import sys\nPATH0 = sys.path[0]\nDATA_ONLY = " + repr(data_only) + "\n" + LOAD)
    got = fresh.json(code, env=env)
    assert isinstance(got, dict)
    return got


def test_the_environment_comes_back_in_a_fresh_process(fresh) -> None:
    saved = fresh.json(SAVE)
    data = (fresh.path / "env.hib").read_bytes()
    assert b"sales.db" in data and b"do-not-save-me" not in data  # only named variables
    m = hibernate.inspect(fresh.path / "env.hib")
    env = m.sections["environment"]
    assert set(env) == {"cwd", "sys_path", "options", "random", "warnings", "env_vars"}
    assert env["options"]["pandas"] == {"display.max_rows": 7}
    text = str(m)
    assert "saved environment" in text and "PROJECT_DB" in text and "sales.db" not in text
    got = _load(fresh, data_only=False)
    assert got["outcome"] == {"cwd": "restored", "sys_path": "restored",
                              "options": "restored", "random": "restored",
                              "warnings": "restored", "ipython": "not saved",
                              "env_vars": "restored"}, got
    assert got["next"] == saved["next"]  # the same draws the saving session would make
    assert got["rows"] == 7 and got["precision"] == 3 and got["divide"] == "ignore"
    assert got["cwd"] == "work" and got["path_added"] and got["own_path_first"]
    assert got["db"] == "sales.db" and got["secret"] is None
    assert got["filter"] == ["ignore", "noisy", "DeprecationWarning"]
    assert got["x"] == 1


def test_a_strangers_file_gives_back_only_display_options_and_random_states(fresh) -> None:
    saved = fresh.json(SAVE, env=STRANGER)
    got = _load(fresh, data_only=True)  # a stranger's file, data only
    assert got["next"] == saved["next"] and got["rows"] == 7  # random, display options
    assert got["outcome"]["options"] == "restored" and got["outcome"]["random"] == "restored"
    for part in ("cwd", "sys_path", "warnings", "env_vars"):
        assert "trusted files only" in got["outcome"][part], got["outcome"]
    assert got["cwd"] != "work" and not got["path_added"] and got["db"] is None
    assert got["filter"] != ["ignore", "noisy", "DeprecationWarning"]


def test_no_environment_unless_asked(fresh, tmp_path) -> None:
    hibernate.save(tmp_path / "plain.hib", {"x": 1})
    assert "environment" not in hibernate.inspect(tmp_path / "plain.hib").sections
    with pytest.raises(ValueError, match="unknown environment parts"):
        hibernate.save(tmp_path / "bad.hib", {"x": 1}, environment=["cwd", "moon"])
    r = hibernate.load(tmp_path / "plain.hib", {}, environment=["random"])
    assert r.environment_restored == {"random": "not saved"}


def test_ipython_extensions_and_autoreload_come_back(fresh) -> None:
    pytest.importorskip("IPython")
    fresh.run("""
        from IPython.core.interactiveshell import InteractiveShell
        import hibernate
        shell = InteractiveShell.instance()
        shell.run_line_magic("load_ext", "autoreload")
        shell.run_line_magic("autoreload", "2")
        shell.run_line_magic("load_ext", "storemagic")
        hibernate.save("ip.hib", shell.user_ns, environment=["ipython"])
    """)
    got = fresh.json("""
        import json
        from IPython.core.interactiveshell import InteractiveShell
        import hibernate
        shell = InteractiveShell.instance()
        r = hibernate.load("ip.hib", shell.user_ns, environment=True)
        reloader = shell.magics_manager.registry["AutoreloadMagics"]._reloader
        print(json.dumps({"outcome": dict(r.environment_restored),
                          "loaded": sorted(shell.extension_manager.loaded),
                          "mode": [reloader.enabled, reloader.check_all]}))
    """)
    assert got["outcome"]["ipython"] == "restored", got
    assert {"autoreload", "storemagic"} <= {e.rsplit(".", 1)[-1] for e in got["loaded"]}
    assert got["mode"] == [True, True]


def test_hibernates_own_variables_are_never_saved(tmp_path, monkeypatch) -> None:
    import os

    monkeypatch.setenv("PROJECT_ROOT", "/srv/project")
    hibernate.save(tmp_path / "all.hib", {"x": 1}, env_vars=["*"])
    data = (tmp_path / "all.hib").read_bytes()
    assert b"/srv/project" in data
    assert os.environ["HIBERNATE_KEY"].encode() not in data  # the key never leaves
    assert b"HIBERNATE_" not in data


def test_matplotlib_rcparams_and_backend_come_back(fresh) -> None:
    """rcParams are data: from your own file they come back even with data_only; the
    backend imports its module, so it is switched only without data_only, and a
    stranger's file sets neither (some rcParams name programs to run)."""
    pytest.importorskip("matplotlib")
    fresh.run("""
        import matplotlib
        matplotlib.use("svg")
        matplotlib.rcParams["lines.linewidth"] = 3.5
        matplotlib.rcParams["axes.titlesize"] = 21.0
        import hibernate
        hibernate.save("mine.hib", {"x": 1}, environment=["options"])
    """)
    fresh.run("""
        import matplotlib
        matplotlib.rcParams["lines.linewidth"] = 3.5
        import hibernate
        hibernate.save("theirs.hib", {"x": 1}, environment=["options"])
    """, env=STRANGER)
    assert hibernate.inspect(fresh.path / "mine.hib").sections["environment"]["options"][
        "matplotlib"]["backend"] == "svg"
    probe = """
import json, matplotlib, hibernate
matplotlib.use("agg")
r = hibernate.load(FILE, {}, environment=["options"], data_only=DATA_ONLY)
print(json.dumps({"width": matplotlib.rcParams["lines.linewidth"],
                  "backend": matplotlib.get_backend(),
                  "outcome": r.environment_restored["options"]}))
"""
    full = fresh.json('FILE, DATA_ONLY = "mine.hib", False\n' + probe)
    assert full == {"width": 3.5, "backend": "svg", "outcome": "restored"}, full
    data = fresh.json('FILE, DATA_ONLY = "mine.hib", True\n' + probe)
    assert data["width"] == 3.5 and data["backend"] == "agg"
    assert "not switched with data_only" in data["outcome"]
    theirs = fresh.json('FILE, DATA_ONLY = "theirs.hib", True\n' + probe)
    assert theirs["width"] != 3.5 and "trusted files only" in theirs["outcome"]


def test_a_module_imported_from_an_added_sys_path_entry_comes_back(fresh) -> None:
    """sys.path is put back before the values, so a module the session imported from an
    entry it added imports again (it failed with ModuleNotFoundError although the same load
    restored the entry; found by the notebook corpus)."""
    (fresh.path / "lib").mkdir()
    (fresh.path / "lib" / "mymod.py").write_text("X = 42\n")
    fresh.run("""
        import os, sys, hibernate
        sys.path.insert(0, os.path.abspath("lib"))
        import mymod
        from mymod import X
        hibernate.save("s.hib", environment=["sys_path"])
        hibernate.checkpoint("store", environment=["sys_path"])
    """)
    got = fresh.json("""
        import json, hibernate
        r = hibernate.load("s.hib", environment=True)
        ns = {}
        c = hibernate.checkout("store", None, ns, environment=["sys_path"])
        print(json.dumps({"failed": [r.failed, c.failed], "X": [mymod.X, X, ns["mymod"].X],
                          "env": [r.environment_restored["sys_path"],
                                  c.environment_restored["sys_path"]]}))
    """)
    assert got == {"failed": [{}, {}], "X": [42, 42, 42], "env": ["restored", "restored"]}
