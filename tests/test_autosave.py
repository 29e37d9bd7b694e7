"""Autosave re-serializes only what a cell may have touched, and still stores exact states.

An InteractiveShell runs the cells in a subprocess; each checkpoint is checked out into a
fresh namespace and compared with a copy of the session taken right after that cell."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from hibernate.checkpoints._autosave import touched_names

SHELL = r'''
import copy, json, pickle
import hibernate
import hibernate.checkpoints._record as rec
from IPython.core.interactiveshell import InteractiveShell

captured = []
original = rec.plan
def spying(ns, select, *a, **k):
    captured.append(sorted(n for n in ns if select(n) and not n.startswith("_")
                           and n not in ("In", "Out", "get_ipython", "exit", "quit", "open")))
    return original(ns, select, *a, **k)
rec.plan = spying

sh = InteractiveShell.instance()
cells = json.loads(open("cells.json").read())
expected = []
for cell in cells:
    assert sh.run_cell(cell, store_history=True).success, cell
    ns = sh.user_ns
    state = {k: ns[k] for k in ("big", "log", "box", "n", "alias", "a", "v", "x", "y", "z")
             if k in ns}
    expected.append(pickle.dumps(state))
history = [c.id for c in reversed(hibernate.log(".hibernate"))]
ok = []
for cid, blob in zip(history, expected[len(expected) - len(history):]):
    want = pickle.loads(blob)
    got = {}
    hibernate.checkout(".hibernate", cid, got)
    same = all(pickle.dumps(got.get(k)) == pickle.dumps(v) for k, v in want.items()
               if k != "box") and (got["box"].items == want["box"].items if "box" in want
                                   else True)
    ok.append(bool(same))
print(json.dumps({"ok": ok, "captured": captured, "n": len(history)}))
'''

CELLS = [
    "%load_ext hibernate",
    "%hibernate autosave on",
    "import numpy as np\nbig = np.zeros(2_000_000)\nlog = []\nn = 0",
    "class Box:\n    def __init__(self):\n        self.items = []\n"
    "    def add(self, x):\n        self.items.append(x)\n        log.append(x)",
    "box = Box()",
    "n += 1",                      # touches only n
    "box.add(5)",                  # a method that also appends to the global log
    "def grow():\n    big[:10] = 1.0",
    "grow()",                      # mutates big through a function
    "alias = log",                 # new sharing between variables
    "alias.append('via alias')",
    "a = np.zeros(4)\nv = a[:2]",
    "a[:] = 7",                    # changes the view v through its base
    "x = []\ndef g():\n    x.append(1)\nhandlers = {'go': g}",
    "handlers['go']()",            # runs g, found through a container
    "import functools\ny = []\n@functools.lru_cache\ndef h(k):\n    y.append(k)",
    "h(3)",                        # a library decorator around a session function
    "import types, sys\nmm = types.ModuleType('mm')\nmm.L = []\nsys.modules['mm'] = mm\n"
    "z = mm.L",
    "mm.L.append(42)",             # through a module attribute
]


def test_autosave_reserializes_only_touched_names_and_stays_exact(tmp_path: Path) -> None:
    (tmp_path / "cells.json").write_text(json.dumps(CELLS))
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(SHELL)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    # a checkpoint after every cell from "autosave on" on; every one checks out exactly
    assert got["n"] == len(CELLS) - 1 and all(got["ok"]), got["ok"]
    captured = got["captured"]  # what each checkpoint serialized, one per cell from cell 1
    # the cell `n += 1` re-serialized n (module references are re-read, which is cheap):
    # big, log and box were reused as they were
    n_cell = captured[CELLS.index("n += 1") - 1]
    assert set(n_cell) == {"n", "np"}, n_cell
    # `box.add(5)` reaches log through Box.add's code
    assert {"box", "log"} <= set(captured[CELLS.index("box.add(5)") - 1])
    assert "big" in captured[CELLS.index("grow()") - 1]


def test_touched_names_follow_session_code() -> None:
    ns: dict = {"__name__": "__main__"}
    exec("import math\nTOTAL = []\n"
         "def helper():\n    TOTAL.append(1)\n"
         "def outer():\n    helper()\n"
         "class K:\n    def m(self):\n        return math.pi + LIMIT\n"
         "k = K()\nLIMIT = 1\n", ns)
    assert {"outer", "helper", "TOTAL"} <= touched_names("outer()", ns)
    assert {"k", "math", "LIMIT"} <= touched_names("k.m()", ns)
    assert "TOTAL" not in touched_names("x = 1", ns)
    assert touched_names("exec('y = 2')", ns) is None
    assert touched_names("def broken(:", ns) is None


CAP = r'''
import json, pathlib
import hibernate
from hibernate.checkpoints._autosave import _active
from IPython.core.interactiveshell import InteractiveShell

def chunk_bytes():
    return sum(p.stat().st_size for p in pathlib.Path(".hibernate/chunks").rglob("*")
               if p.is_file())

sh = InteractiveShell.instance()
sh.run_cell("%load_ext hibernate")
sh.run_cell("%hibernate autosave on --keep 0 --max-size 2M --environment none")
sizes = []
for i in range(6):  # each array cell adds 800 KB of new chunks; two arrays fit in 2 MiB
    for cell in (f"import numpy as np\na = np.full(100_000, {i}.0)", f"n = {i}"):
        assert sh.run_cell(cell).success, cell
        sizes.append(chunk_bytes())
hook = _active[id(sh)]
hibernate.checkpoint(".hibernate", {"other": "a writer autosave does not know"})
assert sh.run_cell("n = 100").success
out = {}
hibernate.checkout(".hibernate", None, out)
counts = getattr(getattr(hook, "cap", None), "counts", -1)  # -1: no SizeCap (before it)
print(json.dumps({"sizes": sizes, "saves": hook.saved, "counts": counts,
                  "n": out["n"], "a": float(out["a"][0]),
                  "kept": len(hibernate.log(".hibernate", all=True))}))
'''


def test_autosave_keeps_the_store_within_max_size_after_every_cell(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(CAP)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert max(got["sizes"]) <= 2 << 20, got["sizes"]  # within the cap after every cell
    assert got["n"] == 100 and got["a"] == 5.0 and got["kept"] >= 2
    # the records are read only when the bound passes the cap (an array cell from the
    # third on) or a checkpoint autosave did not write appears, not after every cell
    assert got["saves"] == 14 and got["counts"] <= 7, got  # "autosave on" is one
