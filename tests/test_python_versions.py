"""Code saved by value across Python minor versions (whole-session issue, item 6).

Bytecode belongs to one Python minor version; run on another it crashed the interpreter
(3.11 bytecode on 3.12 and 3.13: a segmentation fault at the first call). A session with
functions, lambdas, closures, classes with methods and slots, and a function made by
``exec`` (no source) is saved on one Python and loaded on every other CPython minor version
this machine has (pyenv's), in real venvs with hibernate installed from a wheel of this
tree: every function from source comes back rebuilt from its source and works when called;
the ``exec`` one fails with a reason; no process dies.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

PYENV = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"

SESSION = '''
import hibernate, sys
from functools import reduce

SCALE = 10

def add(a, b=2):
    return a + b

def scaled(x):
    return x * SCALE  # a global of the session

def outer(k):
    def inner(x):
        return x * k
    return inner

times3 = outer(3)
square = lambda v: v * v
total = lambda xs: sum(x for x in xs)

class Point:
    __slots__ = ("x", "y")
    def __init__(self, x, y):
        self.x, self.y = x, y
    def norm2(self):
        return self.x ** 2 + self.y ** 2
    @property
    def flipped(self):
        return Point(self.y, self.x)

p = Point(3, 4)
product = lambda xs: reduce(lambda a, b: a * b, xs, 1)
exec("def from_exec(q):\\n    return q + 100\\n")
add2, sub2 = (lambda a, b: a + b), (lambda a, b: a - b)  # one name, one line, two codes

def rate():
    return 0.05

# the script is edited after rate was defined: its source no longer makes this rate
import linecache
path = __file__
with open(path) as f:
    text = f.read()
with open(path, "w") as f:
    f.write(text.replace("return 0.05", "return 0.07"))
linecache.checkcache(path)
hibernate.save(sys.argv[1])
'''

USE = '''
import json, sys
import hibernate
r = hibernate.load(sys.argv[1])
calls = {}
for call in ("add(1)", "scaled(2)", "times3(5)", "square(7)", "total([1, 2, 3])",
             "p.norm2()", "p.flipped.x", "Point(1, 2).norm2()", "product([2, 3, 4])",
             "add2(5, 3)", "sub2(5, 3)"):
    try:
        calls[call] = eval(call)
    except Exception as e:
        calls[call] = f"{type(e).__name__}: {e}"
print(json.dumps({"python": sys.version_info[:2], "failed": r.failed, "notes": dict(r.notes),
                  "environment": list(r.environment), "calls": calls}))
'''

WANT = {"add(1)": 3, "scaled(2)": 20, "times3(5)": 15, "square(7)": 49, "total([1, 2, 3])": 6,
        "p.norm2()": 25, "p.flipped.x": 4, "Point(1, 2).norm2()": 5,
        "product([2, 3, 4])": 24, "add2(5, 3)": 8, "sub2(5, 3)": 2}


def _other_pythons() -> list[Path]:
    here = f"{sys.version_info[0]}.{sys.version_info[1]}."
    found: dict[str, Path] = {}
    for d in sorted(PYENV.glob("3.*")) if PYENV.is_dir() else []:
        minor = ".".join(d.name.split(".")[:2])
        exe = d / "bin" / "python"
        if (d.name.startswith(here) or not exe.exists()
                or tuple(int(n) for n in minor.split(".")) < (3, 10)):
            continue
        found[minor] = exe  # the newest patch release of each minor version
    return list(found.values())


@pytest.fixture(scope="module")
def pythons(tmp_path_factory: pytest.TempPathFactory, hibernate_wheel: Path) -> dict[str, Path]:
    """A venv per other CPython minor version (3.10+), hibernate installed from a wheel of
    this tree: minor version -> its python."""
    others = _other_pythons()
    if not others:
        pytest.skip("no other CPython minor version on this machine (pyenv)")
    base = tmp_path_factory.mktemp("pythons")
    wheel = hibernate_wheel

    def make(exe: Path) -> tuple[str, Path]:
        minor = ".".join(exe.parent.parent.name.split(".")[:2])
        venv = base / f"py{minor}"
        subprocess.run([str(exe), "-m", "venv", str(venv)], check=True, capture_output=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                        str(wheel)], check=True, capture_output=True)
        return minor, venv / "bin" / "python"

    with ThreadPoolExecutor(4) as pool:
        return dict(pool.map(make, others))


def _run(python: Path | str, code: str, path: Path, cwd: Path) -> subprocess.CompletedProcess:
    script = cwd / f"script_{abs(hash(code)) % 10**8}.py"
    script.write_text(code)
    return subprocess.run([str(python), str(script), str(path)], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def _check(got: dict, saved_on: str) -> None:
    assert got["calls"] == WANT, got
    assert sorted(got["failed"]) == ["from_exec", "rate"], got  # no source / edited source
    assert "CodeVersionError" in got["failed"]["from_exec"]
    assert "no source" in got["failed"]["from_exec"] and "no source" in got["failed"]["rate"]
    assert "rebuilt from source" in got["notes"]["add"], got["notes"]
    assert "norm2" in got["notes"]["p"], got["notes"]  # (3.10 has no qualified names)
    assert any(f"saved on Python {saved_on}" in line for line in got["environment"]), got


def test_functions_saved_here_come_back_on_every_other_python(pythons, tmp_path) -> None:
    proc = _run(sys.executable, SESSION, tmp_path / "here.hib", tmp_path)
    assert proc.returncode == 0, proc.stderr
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    for minor, python in pythons.items():
        proc = _run(python, USE, tmp_path / "here.hib", tmp_path)
        assert proc.returncode == 0, (minor, proc.returncode, proc.stderr[-3000:])  # no signal
        got = json.loads(proc.stdout.strip().splitlines()[-1])
        assert got["python"] == [int(n) for n in minor.split(".")]
        _check(got, here)


def test_functions_saved_on_every_other_python_come_back_here(pythons, tmp_path) -> None:
    for minor, python in pythons.items():
        path = tmp_path / f"py{minor}.hib"
        proc = _run(python, SESSION, path, tmp_path)
        assert proc.returncode == 0, (minor, proc.stderr[-3000:])
        proc = _run(sys.executable, USE, path, tmp_path)
        assert proc.returncode == 0, (minor, proc.returncode, proc.stderr[-3000:])
        _check(json.loads(proc.stdout.strip().splitlines()[-1]), minor)


def test_the_same_python_uses_the_saved_bytecode(tmp_path) -> None:
    proc = _run(sys.executable, SESSION, tmp_path / "s.hib", tmp_path)
    assert proc.returncode == 0, proc.stderr
    proc = _run(sys.executable, USE, tmp_path / "s.hib", tmp_path)
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["calls"] == WANT and got["failed"] == {} and got["notes"] == {}, got
    assert "rate" not in got["failed"]  # the same Python uses the saved bytecode
    assert not any("saved on Python" in line for line in got["environment"]), got


CELLS = '''
import sys
from IPython.core.interactiveshell import InteractiveShell
import hibernate
shell = InteractiveShell.instance()
for cell in ["import math\\nSCALE = 10",
             "def scaled(x):\\n    return x * SCALE",
             "root = lambda v: math.sqrt(v)",
             "class Counter:\\n    def __init__(self):\\n        self.n = 0\\n"
             "    def bump(self, by=1):\\n        self.n += by\\n        return self.n",
             "c = Counter()\\nc.bump(2)",
             "evens = lambda n: [i for i in range(n) if i % 2 == 0]"]:
    assert shell.run_cell(cell, store_history=True).success, cell
hibernate.save(sys.argv[1], shell.user_ns)
'''

USE_CELLS = '''
import json, sys
import hibernate
r = hibernate.load(sys.argv[1])
print(json.dumps({"failed": r.failed, "notes": sorted(r.notes),
                  "calls": [scaled(2), root(16.0), c.bump(), Counter().bump(5), evens(5)]}))
'''


def test_functions_from_ipython_cells_come_back_on_every_other_python(pythons,
                                                                       tmp_path) -> None:
    pytest.importorskip("IPython")
    proc = _run(sys.executable, CELLS, tmp_path / "cells.hib", tmp_path)
    assert proc.returncode == 0, proc.stderr
    for minor, python in pythons.items():
        proc = _run(python, USE_CELLS, tmp_path / "cells.hib", tmp_path)
        assert proc.returncode == 0, (minor, proc.returncode, proc.stderr[-3000:])
        got = json.loads(proc.stdout.strip().splitlines()[-1])
        assert got["failed"] == {}, (minor, got)
        assert got["calls"] == [20, 4.0, 3, 5, [0, 2, 4]], (minor, got)
        assert {"scaled", "root", "Counter", "c", "evens"} <= set(got["notes"]), (minor, got)


def test_the_environment_report_says_what_differs_and_what_to_install() -> None:
    import numpy as np

    from hibernate._reports import environment_differences

    lines = environment_differences({"python": "3.9.1", "packages": {
        "numpy": "1.0.0", "nosuchpackage_hib": "2.0", "sys": "x", "../evil": "1"}})
    assert lines[0].startswith("saved on Python 3.9.1, this is ")
    assert f"numpy: saved with 1.0.0, {np.__version__} is installed" in lines
    assert "nosuchpackage_hib 2.0 is not installed: pip install 'nosuchpackage_hib==2.0'" in lines
    assert not any("evil" in line for line in lines)  # not a module name: not looked up
    here = ".".join(map(str, sys.version_info[:3]))
    assert environment_differences({"python": here, "packages": {
        "numpy": np.__version__}}) == ()
