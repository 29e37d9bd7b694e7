"""Replay (whole-session issue, item 1): what cannot be stored is recomputed from the cells
that made it, in a fresh kernel or process, and the notebook's remaining cells then give the
outputs they gave in the original run. Cells that act outside the session are not run
unless asked, and the files they wrote stay untouched."""

from __future__ import annotations

from pathlib import Path

import pytest

import hibernate

STRANGER = {"HIBERNATE_KEY": "5354524e47522d0f1e2d3c4b5a69780f1e2d3c4b5a6978"}

NOTEBOOK = [
    "import hashlib, random, threading",
    "gen = (i * i for i in range(10))",
    "a = next(gen)",
    "h = hashlib.sha256()\nh.update(b'x')",
    "list = [3, 1, 2]\ninput = 'data.csv'",
    "b = next(gen)",
    "h.update(b'y')",
    "with open('side.txt', 'w') as f:\n    f.write('written once')",
    "lock = threading.Lock()",
    "fh = open('lines.txt')\nfirst_line = fh.readline()",
    "for row in fh:\n    break",
    "from IPython.core.magic import register_cell_magic\n"
    "@register_cell_magic\ndef shout(line, cell):\n    return cell.strip().upper() + '!'",
    "def describe(v):\n    return f'{v} of {len(list)}'",
    "random.seed(4)\nr1 = random.random()",
    "import os, sys\nimport numpy as np, pandas as pd\npd.set_option('display.max_rows', 7)\n"
    "np.set_printoptions(precision=2)\nos.makedirs('sub', exist_ok=True)\nos.chdir('sub')\n"
    "sys.path.append('/opt/notebook-lib')",
    "import ipywidgets as widgets\nlevel = widgets.IntSlider(value=4, max=9)",
    "broken = 1 / 0",
]
SAVE = "%hibernate save ../s.hib --environment"  # (the notebook changed directory)
# the notebook's remaining cells: their outputs must be the original run's
REMAINING = ("import json\nprint(json.dumps([next(gen), h.hexdigest(), sorted(list), input,"
             " fh.readline(), row, describe(5), random.random(), lock.acquire(timeout=1),"
             " first_line, pd.get_option('display.max_rows'), str(np.array([1/3])),"
             " os.path.basename(os.getcwd()), '/opt/notebook-lib' in sys.path,"
             " level.value]))")
MAGIC = "%%shout\nhello"


@pytest.fixture(scope="module")
def kernel_type():  # type: ignore[no-untyped-def]
    pytest.importorskip("jupyter_client")
    pytest.importorskip("ipykernel")
    pytest.importorskip("ipywidgets")
    from test_jupyter import Kernel

    return Kernel


def test_a_notebook_comes_back_and_its_remaining_cells_agree(kernel_type, tmp_path) -> None:
    (tmp_path / "lines.txt").write_text("one\ntwo\nthree\nfour\n")
    k = kernel_type(tmp_path)
    try:
        assert k.run("%load_ext hibernate")["error"] is None
        for cell in NOTEBOOK:
            k.run(cell)  # the last one raises, as cells do
        out = k.run(SAVE)
        assert out["error"] is None, out
        original = k.json(REMAINING)
        original_magic = k.run(MAGIC)["result"]
    finally:
        k.close()
    assert original_magic == "'HELLO!'"
    (tmp_path / "side.txt").unlink()  # a replay that runs that cell would write it again
    m = hibernate.inspect(tmp_path / "s.hib")
    # cell 1 is %load_ext; the notebook's cells are 2 onwards
    assert str(m.entry("gen").how) == "replayed" and m.entry("gen").extra["replay"] == [
        3, 4, 7]
    assert "replay: cells" in str(m)

    # without replay: what could not be stored (the generator, the hash, a file read by
    # iteration) is missing, and every remaining cell not using them gives the original output
    k = kernel_type(tmp_path)
    try:
        k.run("%load_ext hibernate\n%hibernate load s.hib --environment")
        assert k.json("import json\nprint(json.dumps(['gen' in dir(), 'h' in dir(), "
                      "'fh' in dir()]))") == [False, False, False]
        without = REMAINING.replace("next(gen), h.hexdigest()", "None, None").replace(
            "fh.readline()", "None")
        assert k.json(without) == [None, None, *original[2:4], None, *original[5:]]
    finally:
        k.close()

    k = kernel_type(tmp_path)
    try:
        out = k.run("%load_ext hibernate\n%hibernate load s.hib --replay --environment")
        assert out["error"] is None, out
        assert "gen <- cells 3, 4, 7" in out["stdout"], out["stdout"]
        assert k.json(REMAINING) == original
        assert k.run(MAGIC)["result"] == original_magic
    finally:
        k.close()
    assert not (tmp_path / "side.txt").exists()


SCRIPT = """
import hashlib
n = 5
gen = (i * i for i in range(n))
first = next(gen)
digest = hashlib.md5()
digest.update(b"abc")
with open("report.txt", "w") as out:
    out.write("done")
written = open("report.txt").read()
logged = open("log.txt", "a")
second = next(gen)
"""

LOAD = """
import json
import hibernate
r = hibernate.load("job.hib", replay=REPLAY, include=INCLUDE, trust=TRUST)
print(json.dumps({"restored": sorted(r.restored), "failed": r.failed,
                  "plan": {k: list(v) for k, v in r.replay_plan.items()},
                  "next": next(gen) if "gen" in globals() else None,
                  "digest": digest.hexdigest() if "digest" in globals() else None}))
"""


def _load(fresh, replay: object, include: object = None,  # type: ignore[no-untyped-def]
          trust: bool = False) -> dict:  # type: ignore[type-arg]
    got = fresh.json(f"REPLAY = {replay!r}\nINCLUDE = {include!r}\nTRUST = {trust!r}\n"
                     + LOAD)
    assert isinstance(got, dict)
    return got


def _run_script(fresh, env=None) -> None:  # type: ignore[no-untyped-def]
    (fresh.path / "job.py").write_text(SCRIPT)
    proc = fresh.run("""
        import subprocess, sys
        p = subprocess.run([sys.executable, "-m", "hibernate", "run", "job.py"],
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
    """, env=env)
    assert proc.returncode == 0


def test_a_script_run_by_hibernate_replays_its_statements(fresh) -> None:
    _run_script(fresh)
    (fresh.path / "report.txt").unlink()
    got = _load(fresh, True)
    assert got["next"] == 4  # 0 and 1 were drawn before the save
    import hashlib

    assert got["digest"] == hashlib.md5(b"abc").hexdigest()
    assert "logged" in got["failed"] and "appends" not in got["failed"]["logged"]
    assert "writes a file" in got["failed"]["logged"]
    assert not (fresh.path / "report.txt").exists()  # the writing cell did not run
    got = _load(fresh, "all")  # runs the flagged cells too
    assert "logged" in got["restored"] and (fresh.path / "report.txt").exists()


def test_include_replays_only_the_included_missing_variables(fresh) -> None:
    _run_script(fresh)
    got = _load(fresh, True, include=["digest", "n"])
    assert got["plan"] == {"digest": [1, 5, 6]} and got["next"] is None


def test_replay_needs_trust_and_never_runs_with_data_only(fresh, tmp_path) -> None:
    _run_script(fresh, env=STRANGER)
    with pytest.raises(hibernate.UntrustedFileError, match="replay runs the file's"):
        hibernate.load(fresh.path / "job.hib", {}, replay=True)
    with pytest.raises(ValueError, match="data_only"):
        hibernate.load(fresh.path / "job.hib", {}, replay=True, data_only=True)
    got = _load(fresh, True, trust=True)  # the user's choice: then it replays
    assert got["next"] == 4 and "gen" in got["restored"]


def test_a_cell_that_fails_on_replay_fails_only_the_variables_needing_it(fresh) -> None:
    (fresh.path / "numbers.txt").write_text("1\n2\n3\n")
    (fresh.path / "job.py").write_text(
        "src = open('numbers.txt')\ndoubled = (int(x) * 2 for x in src)\n"
        "first = next(doubled)\ngen = (v for v in range(3))\nvalues = [1, 2]\n")
    fresh.run("""
        import subprocess, sys
        subprocess.run([sys.executable, "-m", "hibernate", "run", "job.py"], check=True)
    """)
    Path(fresh.path / "numbers.txt").unlink()  # the slice of `doubled` opens it again
    got = fresh.json("""
        import json
        import hibernate
        r = hibernate.load("job.hib", replay=True)
        print(json.dumps({"failed": r.failed, "restored": sorted(r.restored)}))
    """)
    assert "FileNotFoundError" in got["failed"]["doubled"], got
    assert set(got["failed"]) == {"doubled", "src"}  # (they stay placeholders)
    assert {"gen", "values", "first"} <= set(got["restored"])
    assert not {"doubled", "src"} & set(got["restored"])


def test_the_trust_listing_shows_the_cells_replay_would_run(fresh) -> None:
    _run_script(fresh, env=STRANGER)
    out = fresh.run("""
        import subprocess, sys
        p = subprocess.run([sys.executable, "-m", "hibernate", "trust", "job.hib", "--yes"],
                           capture_output=True, text=True)
        print(p.stdout)
    """).stdout
    assert "with replay=True it would run these recorded cells" in out
    assert '    | digest.update(b"abc")' in out
    assert "writes a file (open(..., 'w')): not run unless replay='all'" in out
    got = _load(fresh, True)  # on the trust list now: it replays
    assert got["next"] == 4


def _hibernate_run(fresh, source: str) -> None:  # type: ignore[no-untyped-def]
    (fresh.path / "job.py").write_text(source)
    fresh.run("""
        import subprocess, sys
        subprocess.run([sys.executable, "-m", "hibernate", "run", "job.py"], check=True)
    """)


def test_effects_are_found_through_imports_in_earlier_cells(fresh) -> None:
    _hibernate_run(fresh, "from shutil import rmtree\nimport os\nimport subprocess as sp\n"
                          "out = 'victim'\nos.makedirs(out, exist_ok=True)\nrmtree(out)\n"
                          "os.makedirs(out, exist_ok=True)\nrc = sp.run(['true']).returncode\n"
                          "gen = (p for p in os.listdir(out))\n")
    m = hibernate.inspect(fresh.path / "job.hib")
    effects = {c["number"]: c["effects"] for c in m.sections["cells"]["cells"]}
    assert effects[6] == ["changes files (shutil.rmtree)"], effects
    (fresh.path / "victim" / "important.txt").write_text("keep me")
    got = _load(fresh, True)
    assert "gen" in got["failed"] and "shutil.rmtree" in got["failed"]["gen"]
    assert (fresh.path / "victim" / "important.txt").read_text() == "keep me"


def test_a_broken_slice_stops_before_it_changes_restored_values(fresh) -> None:
    _hibernate_run(fresh, "import subprocess\n"
                          "data = [1, 2] if subprocess.run(['true']).returncode == 0 else []\n"
                          "data.append(3)\ngen = (v for v in data)\n")
    got = fresh.json("""
        import json
        import hibernate
        r = hibernate.load("job.hib", replay=True)
        print(json.dumps({"failed": r.failed, "data": data}))
    """)
    assert "gen" in got["failed"] and got["data"] == [1, 2, 3], got  # not [1, 2, 3, 3]


def test_with_include_what_the_replayed_values_read_is_bound_too(fresh) -> None:
    _hibernate_run(fresh, "k = 10\ngen = (x * k for x in range(3))\n")
    got = fresh.json("""
        import json
        import hibernate
        r = hibernate.load("job.hib", replay=True, include=["gen"])
        print(json.dumps({"values": list(gen), "notes": dict(r.notes)}))
    """)
    assert got["values"] == [0, 10, 20], got
    assert "bound by the replay" in got["notes"]["k"], got


def test_a_stored_value_that_fails_to_restore_is_rebuilt_by_replay(fresh) -> None:
    """Slices are recorded for stored values too: a value whose own pickle cannot be
    rebuilt on load (its class refuses) comes back by replay, and says so."""
    _hibernate_run(fresh, "class Fragile:\n    def __init__(self, v):\n        self.v = v\n"
                          "    def __reduce__(self):\n        return (refuse, (self.v,))\n"
                          "def refuse(v):\n    raise RuntimeError('cannot rebuild')\n"
                          "obj = Fragile(4)\nother = 7\n")
    got = fresh.json("""
        import json
        import hibernate
        plain = hibernate.load("job.hib", {})
        r = hibernate.load("job.hib", replay=True)
        print(json.dumps({"plain": plain.failed, "failed": r.failed, "v": obj.v,
                          "note": r.notes.get("obj", ""), "other": other}))
    """)
    assert "cannot rebuild" in got["plain"]["obj"]          # without replay it fails
    assert got["failed"] == {} and got["v"] == 4 and got["other"] == 7
    assert got["note"].startswith("replayed: cells"), got


def test_checkout_replays_as_load_does(fresh) -> None:
    _hibernate_run(fresh, "import hibernate\nn = 3\ngen = (i * n for i in range(5))\n"
                          "first = next(gen)\nc = hibernate.checkpoint('store')\n")
    got = fresh.json("""
        import json
        import hibernate
        r = hibernate.checkout("store", replay=True)
        print(json.dumps({"plan": {k: list(v) for k, v in r.replay_plan.items()},
                          "next": next(gen), "failed": r.failed}))
    """)
    assert got["next"] == 3 and got["failed"] == {} and "gen" in got["plan"], got


def test_ipythons_own_names_are_never_replayed(kernel_type, tmp_path) -> None:
    """A cell hibernate cannot see into (``exec``) may have made any name, so it joins the
    slices of what the user made; IPython's own names (In, _i3, get_ipython...) are never
    planned, and a replay reports no failure for them."""
    k = kernel_type(tmp_path)
    try:
        for cell in ["%load_ext hibernate", "exec('y = 2')",
                     "def count():\n    yield from range(10)", "g = count()", "next(g)",
                     "%hibernate save s.hib"]:
            assert k.run(cell)["error"] is None
    finally:
        k.close()
    k = kernel_type(tmp_path)
    try:
        got = k.json("import json, hibernate\nr = hibernate.load('s.hib', replay=True)\n"
                     "print(json.dumps({'failed': r.failed, 'plan': sorted(r.replay_plan), "
                     "'next': next(g)}))")
    finally:
        k.close()
    assert got == {"failed": {}, "plan": ["g"], "next": 1}
