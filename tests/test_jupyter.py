"""Jupyter and IPython, for real: ipykernels started through jupyter_client, a notebook run
by nbclient, and an InteractiveShell in a subprocess. Saving and loading always happen in
different kernels or processes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

jupyter_client = pytest.importorskip("jupyter_client")
pytest.importorskip("ipykernel")


class Kernel:
    """A real ipykernel in ``cwd``; ``run`` executes a cell and returns its outputs."""

    def __init__(self, cwd: Path, env: dict[str, str] | None = None,
                 extra_arguments: list[str] | None = None) -> None:
        import os

        from jupyter_client.manager import start_new_kernel

        self.km, self.kc = start_new_kernel(kernel_name="python3", cwd=str(cwd),
                                            startup_timeout=60,
                                            env={**os.environ, **(env or {})},
                                            extra_arguments=extra_arguments or [])

    def run(self, code: str) -> dict[str, Any]:
        out: dict[str, Any] = {"stdout": "", "html": [], "text": [], "error": None,
                               "result": None, "mimes": set()}

        def hook(msg: dict[str, Any]) -> None:
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                out["stdout"] += content["text"]
            elif kind == "display_data":
                out["mimes"].update(content["data"])
                out["html"].append(content["data"].get("text/html", ""))
                out["text"].append(content["data"].get("text/plain", ""))
            elif kind == "execute_result":
                out["result"] = content["data"].get("text/plain")
            elif kind == "error":
                out["error"] = "\n".join(content["traceback"])

        reply = self.kc.execute_interactive(textwrap.dedent(code), timeout=120,
                                            output_hook=hook)
        if reply["content"]["status"] != "ok" and out["error"] is None:
            out["error"] = str(reply["content"])
        return out

    def json(self, code: str) -> Any:
        out = self.run(code)
        assert out["error"] is None, out["error"]
        return json.loads(out["stdout"].strip().splitlines()[-1])

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


BUILD = """
import socket
import numpy as np
import pandas as pd
a=[100,'aa']
b={"x":100,"y":'200'}
df1 = pd.DataFrame({'A': np.arange(1,1000), 'B': np.arange(2,1001)})
def grow(n):
    return n + len(a)
class Greeter:
    def hi(self):
        return "hi " + b["y"]
g = Greeter()
ip = get_ipython()
sock = socket.socket()
holder = {"shell": ip, "n": 1}
"""


@pytest.fixture
def kernels(tmp_path: Path):  # type: ignore[no-untyped-def]
    started: list[Kernel] = []

    def start() -> Kernel:
        k = Kernel(tmp_path)
        started.append(k)
        return k

    yield start
    for k in started:
        k.close()


def test_magic_save_in_one_kernel_load_in_a_fresh_one(kernels, tmp_path: Path) -> None:
    k1 = kernels()
    assert k1.run(BUILD)["error"] is None
    assert k1.run("df1.shape")["result"] == "(999, 2)"          # fills Out
    assert k1.run("%load_ext hibernate")["error"] is None
    saved = k1.run("%hibernate save")
    assert saved["error"] is None
    assert "<table>" in saved["html"][0]                       # rich display in Jupyter
    skipped = k1.json("""
        import hibernate, json
        m = hibernate.inspect("session.hib")
        print(json.dumps({e.name: e.skip.code for e in m.entries if e.skip}))
    """)
    for name in ("In", "Out", "get_ipython", "exit", "quit", "ip", "_", "_i1", "_oh"):
        assert skipped.get(name) == "ipython-internal", (name, skipped.get(name))
    assert skipped["holder"] == "ipython-internal"             # contains the shell
    assert skipped["sock"] == "unpicklable"
    k1.close()

    k2 = kernels()
    assert k2.run("x_before = 'mine'\n1 + 1")["result"] == "2"
    k2.run("%load_ext hibernate")
    loaded = k2.run("%hibernate load")
    assert loaded["error"] is None and "restored" in loaded["text"][0]
    got = k2.json("""
        import json
        import numpy as np, pandas as pd
        expected = pd.DataFrame({'A': np.arange(1,1000), 'B': np.arange(2,1001)})
        pd.testing.assert_frame_equal(df1, expected)
        shell = get_ipython()
        print(json.dumps({"a": a, "b": b, "grow": grow(1), "hi": g.hi(),
                          "cls": type(g) is Greeter, "mine": x_before,
                          "out_is_live": Out is shell.user_ns["_oh"],
                          "in_len": len(In), "has_ip": "ip" in globals(),
                          "globals": grow.__globals__ is shell.user_ns}))
    """)
    assert got == {"a": [100, "aa"], "b": {"x": 100, "y": "200"}, "grow": 3, "hi": "hi 200",
                   "cls": True, "mine": "mine", "out_is_live": True, "in_len": got["in_len"],
                   "has_ip": False, "globals": True}
    # The kernel still records history and Out for new cells after the load.
    n = got["in_len"]
    assert k2.run("40 + 2")["result"] == "42"
    after = k2.json("import json; print(json.dumps([len(In), Out[max(Out)], _, In[-2]]))")
    assert after[0] > n and after[1] == 42 and after[2] == 42 and after[3] == "40 + 2"


def test_library_calls_in_a_cell_match_the_magics(kernels) -> None:
    k1 = kernels()
    k1.run(BUILD)
    assert k1.run("import hibernate\nr = hibernate.save('lib.hib')")["error"] is None
    k1.close()
    k2 = kernels()
    got = k2.json("""
        import hibernate, json
        r = hibernate.load("lib.hib")
        print(json.dumps({"a": a, "grow": grow(2), "In": type(In).__name__,
                          "skipped_ip": "ip" in r.skipped or "ip" not in globals()}))
    """)
    assert got == {"a": [100, "aa"], "grow": 4, "In": "list", "skipped_ip": True}


def test_a_slow_save_in_a_kernel_draws_a_progress_widget(kernels) -> None:
    """In Jupyter the progress bar is a widget (tqdm's notebook bar), not text on stderr."""
    k = kernels()
    out = k.run("""
        import numpy as np, hibernate, hibernate._progress as p
        p.DELAY = p.EVERY = 0.0   # as if the save had taken more than a second
        hibernate.save("big.hib", {"a": np.zeros(3_000_000)})
    """)
    assert out["error"] is None, out["error"]
    assert "application/vnd.jupyter.widget-view+json" in out["mimes"]
    assert any("hibernate: saving" in t for t in out["text"])


def test_names_from_pylab_are_saved_as_the_notebooks_own(kernels) -> None:
    """%pylab puts numpy and pylab's functions among the names IPython hides; old notebooks
    use them as their own (np, hist): they are saved by reference and come back, while
    IPython's own hidden names (In, exit, get_ipython) still are never saved."""
    k = kernels()
    for cell in ("%pylab inline", "import numpy as np\na = np.arange(4)",
                 "%load_ext hibernate\n%hibernate save pylab.hib"):
        assert k.run(cell)["error"] is None
    k.close()
    k = kernels()
    got = k.json("""
        import json, hibernate
        r = hibernate.load("pylab.hib")
        print(json.dumps([int(np.sum(a)), type(hist).__name__, sorted(
            n for n in ("In", "Out", "exit", "get_ipython", "_ih") if n in r.restored)]))
    """)
    assert got == [6, "function", []]


def test_loading_never_overwrites_the_kernels_own_names(kernels, tmp_path: Path) -> None:
    import hibernate

    hibernate.save(tmp_path / "hostile.hib", {"In": ["evil"], "Out": {1: "evil"}, "_": 0,
                                              "get_ipython": 1, "x": 5})
    k = kernels()
    k.run("%load_ext hibernate")
    assert k.run("%hibernate load hostile.hib")["error"] is None
    got = k.json("import json; print(json.dumps([x, type(In).__name__, In[-1][:7], "
                 "callable(get_ipython), Out is get_ipython().user_ns['_oh']]))")
    assert got == [5, "list", "import ", True, True]


def test_magic_help_errors_and_options(kernels) -> None:
    k = kernels()
    k.run("%load_ext hibernate")
    assert "%hibernate save" in k.run("%hibernate")["stdout"]
    bad = k.run("%hibernate frobnicate")
    assert bad["error"] is None and "invalid choice" in bad["stdout"]
    k.run("keep = 1\ndrop = 2\ntmp_x = 3")
    assert k.run("%hibernate save part.hib --include keep,tmp_* --exclude tmp_x")[
        "error"] is None
    got = k.json("""
        import hibernate, json
        m = hibernate.inspect("part.hib")
        print(json.dumps(sorted(e.name for e in m.entries if e.kind == "value")))
    """)
    assert got == ["keep"]
    shown = k.run("%hibernate inspect part.hib")
    assert "keep" in shown["html"][0]
    err = k.run("%hibernate save s.hib -o nonsense")
    assert "KEY=VALUE" in (err["error"] or "")


def test_a_notebook_saves_and_another_notebook_loads(tmp_path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    v4 = nbformat.v4

    def execute(cells: list[str]) -> Any:
        nb = v4.new_notebook(cells=[v4.new_code_cell(c) for c in cells])
        client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=120,
                                         resources={"metadata": {"path": str(tmp_path)}})
        return client.execute()

    execute(["%load_ext hibernate", BUILD, "%hibernate save nb.hib"])
    nb = execute([
        "%load_ext hibernate",
        "%hibernate load nb.hib",
        "assert a == [100, 'aa'] and b == {'x': 100, 'y': '200'}\n"
        "assert df1['B'].sum() == sum(range(2, 1001))\n"
        "assert grow(1) == 3 and g.hi() == 'hi 200'\n"
        "print('notebook ok')",
    ])
    outputs = nb.cells[-1].outputs
    assert any("notebook ok" in o.get("text", "") for o in outputs)
    html = [o for o in nb.cells[1].outputs if "text/html" in o.get("data", {})]
    assert html and "<table>" in html[0]["data"]["text/html"]


def test_terminal_ipython_shell(tmp_path: Path) -> None:
    save = """
        from IPython.core.interactiveshell import InteractiveShell
        sh = InteractiveShell.instance()
        for cell in ["%load_ext hibernate", "x = [1, 2]\\ndef f():\\n    return sum(x)",
                     "x", "%hibernate save term.hib"]:
            assert sh.run_cell(cell, store_history=True).success, cell
    """
    load = """
        import json
        from IPython.core.interactiveshell import InteractiveShell
        sh = InteractiveShell.instance()
        for cell in ["%load_ext hibernate", "%hibernate load term.hib", "y = f()"]:
            assert sh.run_cell(cell, store_history=True).success, cell
        ns = sh.user_ns
        print(json.dumps([ns["y"], ns["x"], len(ns["In"]), "_i3" in ns]))
    """
    for code in (save, load):
        proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == [3, [1, 2], 4, True]


def test_autosave_survives_a_killed_kernel(kernels, tmp_path: Path) -> None:
    import os
    import signal
    import time

    import hibernate

    k1 = kernels()
    k1.run("%load_ext hibernate")
    assert "autosave on" in k1.run("%hibernate autosave on")["stdout"]
    k1.run("import numpy as np\ncounter = 0\nbig = np.zeros(500_000)")
    k1.run("counter += 1\nbig[7] = 7.0")
    k1.run("counter += 1\nnotes = ['last cell']")
    store = tmp_path / ".hibernate"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the last cell's checkpoint is in the store
        history = hibernate.log(store) if store.exists() else []
        if history and "notes" in history[0].names:
            break
        time.sleep(0.1)
    else:
        pytest.fail("no checkpoint of the last cell appeared")
    pid = k1.km.provisioner.process.pid
    os.kill(pid, signal.SIGKILL)

    k2 = kernels()
    k2.run("%load_ext hibernate")
    assert k2.run("%hibernate checkout " + history[0].id)["error"] is None
    got = k2.json("import json; print(json.dumps([counter, float(big[7]), notes]))")
    assert got == [2, 7.0, ["last cell"]]
    logged = k2.run("%hibernate log")["stdout"]
    assert history[0].id in logged and "autosave after cell" in logged
