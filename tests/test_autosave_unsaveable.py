"""Autosave in a real ipykernel goes on past objects it cannot save.

A session that holds a generator, a hash object, a file open for writing, a socket, an
in-memory sqlite3 connection and an object whose ``__reduce__`` raises is checkpointed after
every cell exactly as ``save`` would save it: those names are skipped with a reason,
everything else is stored, and no cell loses its checkpoint. The checkpoints are read back
in a fresh process, never in the kernel."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

pytest.importorskip("jupyter_client")
pytest.importorskip("ipykernel")

STORE = ".autosave-store"
KEY = "hibernate-test-key-autosave-unsaveable"  # like conftest's isolated_key

# The names that hold objects no serializer can save (distinct words, so that a report of
# one can be counted in the kernel's output).
UNSAVEABLE = ("numbers_gen", "running_hash", "open_fh", "live_sock", "sqlite_con",
              "unreducible")

# (cell, the saveable state after it). Each unsaveable object is created, then used, with
# ordinary variables changed in between and after.
X1: dict[str, Any] = {"x": 1}
X2: dict[str, Any] = {"x": 2}
D3: dict[str, Any] = {"x": 2, "data": [1, 2, 3]}
F0: dict[str, Any] = {**D3, "first": 0}
D4: dict[str, Any] = {**F0, "data": [1, 2, 3, 4]}
CELLS: list[tuple[str, dict[str, Any]]] = [
    ("x = 1", X1),
    ("numbers_gen = (i for i in range(3))", X1),
    ("x = 2", X2),
    ("import hashlib\nrunning_hash = hashlib.sha256()", X2),
    ("data = [1, 2, 3]", D3),
    ("open_fh = open('scratch.txt', 'w')", D3),
    ("import socket\nlive_sock = socket.socket()", D3),
    ("import sqlite3\nsqlite_con = sqlite3.connect(':memory:')", D3),
    ("class Refuses:\n    def __reduce__(self):\n        raise RuntimeError('not today')\n"
     "unreducible = Refuses()", D3),
    ("first = next(numbers_gen)\nrunning_hash.update(b'x')\nopen_fh.write('hi')\n"
     "sqlite_con.execute('create table t (v)')\nlive_sock.setblocking(False)", F0),
    ("data.append(4)", D4),
    ("x = 3", {**D4, "x": 3}),
    ("final = 'done'", {**D4, "x": 3, "final": "done"}),
]
TRACKED = ("x", "data", "first", "final")

READ_BACK = """
import json
import hibernate

out = []
for c in reversed(hibernate.log({store!r})):  # oldest first
    ns = {{}}
    report = hibernate.checkout({store!r}, c.id, ns)
    out.append({{"message": c.message,
                 "state": {{k: ns[k] for k in {tracked!r} if k in ns}},
                 "live": sorted(n for n in {unsaveable!r} if n in ns),
                 "skipped": sorted(n for n in {unsaveable!r} if n in report.skipped)}})
print(json.dumps(out))
"""


@dataclass
class Session:
    """What the kernel printed, the execution count of each cell, and every checkpoint."""

    output: list[tuple[str, str]]  # (cell, all the text it showed: streams and displays)
    counts: list[int]              # execution_count of each cell of CELLS
    autosave_on_count: int         # execution_count of the "%hibernate autosave on" cell
    checkpoints: list[dict[str, Any]]  # oldest first

    @property
    def text(self) -> str:
        return "\n".join(text for _, text in self.output)

    def explain(self) -> str:
        shown = "\n".join(f">>> {cell!r}\n{text}" for cell, text in self.output if text)
        stored = "\n".join(json.dumps(c) for c in self.checkpoints)
        return f"\n--- kernel output\n{shown}\n--- checkpoints, oldest first\n{stored}"


def _run(kc: Any, code: str) -> tuple[str, int]:
    """Run a cell; return the text it showed and its execution count (it must not fail)."""
    shown: list[str] = []
    errors: list[str] = []

    def hook(msg: dict[str, Any]) -> None:
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            shown.append(content["text"])
        elif kind in ("display_data", "execute_result"):
            shown.append(content["data"].get("text/plain", ""))
        elif kind == "error":
            errors.append("\n".join(content["traceback"]))

    reply = kc.execute_interactive(code, timeout=60, output_hook=hook)
    assert reply["content"]["status"] == "ok" and not errors, (code, errors, reply["content"])
    return "".join(shown), int(reply["content"]["execution_count"])


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    """One kernel runs every cell with autosave on; the store is then read back in a fresh
    process. (Module-scoped, so the key and config dir are set here, not by conftest.)"""
    from jupyter_client.manager import start_new_kernel

    cwd = tmp_path_factory.mktemp("kernel")
    env = {"HIBERNATE_KEY": KEY,
           "HIBERNATE_CONFIG_DIR": str(tmp_path_factory.mktemp("config"))}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)  # the kernel inherits them
        km, kc = start_new_kernel(kernel_name="python3", cwd=str(cwd), startup_timeout=60)
    try:
        load, on = "%load_ext hibernate", f"%hibernate autosave on --store {STORE}"
        output = [(load, _run(kc, load)[0])]
        text, on_count = _run(kc, on)
        output.append((on, text))
        assert "autosave on" in text, text
        counts = []
        for cell, _ in CELLS:
            text, count = _run(kc, cell)
            output.append((cell, text))
            counts.append(count)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)

    code = textwrap.dedent(READ_BACK).format(store=STORE, tracked=TRACKED,
                                             unsaveable=UNSAVEABLE)
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    checkpoints = json.loads(proc.stdout.strip().splitlines()[-1])
    yield Session(output, counts, on_count, checkpoints)


def test_autosave_goes_on_past_unsaveable_objects(session: Session) -> None:
    why = session.explain()
    text = session.text
    # nothing failed: no "autosave failed" (at most once, said once), no hook traceback
    assert len(re.findall(r"autosave failed", text)) <= 1, why
    assert "Error in callback" not in text and "Traceback" not in text, why
    # a skipped object is reported, once, not after every cell
    for name in UNSAVEABLE:
        assert len(re.findall(rf"\b{name}\b", text)) == 1, (name, why)

    history = session.checkpoints
    assert history, "autosave wrote no checkpoint at all" + why
    assert all(re.fullmatch(r"autosave after cell \d+", c["message"]) for c in history), why
    # the last checkpoint holds the state after the last cell, the unsaveable names skipped
    last = history[-1]
    assert last["state"] == CELLS[-1][1], "the newest checkpoint is not the last cell's" + why
    assert last["live"] == [], why
    assert last["skipped"] == sorted(UNSAVEABLE), why
    # one checkpoint per cell from "autosave on" on, each with the state after its cell
    assert len(history) == 1 + len(CELLS), "a cell got no checkpoint" + why
    numbers = [int(c["message"].rsplit(" ", 1)[1]) for c in history]
    assert numbers == list(range(numbers[0], numbers[0] + len(history))), why
    assert history[0]["state"] == {}, why
    for (cell, want), got in zip(CELLS, history[1:]):
        assert got["state"] == want, (cell, got, why)
        assert got["live"] == [], (cell, got, why)


def test_autosave_messages_name_the_cell_just_run(session: Session) -> None:
    """A checkpoint "autosave after cell N" holds the state after In[N], not In[N - 1]."""
    numbers = [int(c["message"].rsplit(" ", 1)[1]) for c in session.checkpoints]
    assert numbers == [session.autosave_on_count, *session.counts], session.explain()
