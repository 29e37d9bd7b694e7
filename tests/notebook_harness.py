"""Interrupt a notebook at a cell, restore it in a fresh kernel, finish it, and compare.

Used by ``test_notebook_corpus.py`` (the repository's corpus) and by
``scripts/measure_notebooks.py`` (notebooks written by others). The notebook's directory is
copied into the run directory first (notebooks read data and import modules next to them).
A kernel runs the cells before the split, saves with ``%hibernate save --environment``, and
the working directory is copied as it is at that moment; the same kernel runs the remaining
cells (the reference outputs). The working directory is put back as it was at the save, and
a fresh kernel loads with ``--replay --environment`` (or the replay asked for) and runs the
remaining cells. Outputs compared: stream text, results' text/plain (memory addresses
masked), and error names.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbclient
import nbformat

Outputs = list[tuple[str, str]]


@dataclass
class Outcome:
    """What happened: the reference outputs, the resumed ones, and the save and load."""

    reference: list[Outputs]
    resumed: list[Outputs]
    save: Outputs
    load: Outputs
    after: list[str] = field(default_factory=list)  # the cells after the split

    def differing(self) -> list[int]:
        """Indexes (after the split) of the cells whose outputs differ."""
        return [i for i, (a, b) in enumerate(zip(self.reference, self.resumed)) if a != b]


_ADDRESS = re.compile(r"\b0x[0-9a-fA-F]{6,}\b")


def _text(text: str) -> str:
    """Memory addresses in reprs (``<Line2D at 0x7f...>``) differ in every process."""
    return _ADDRESS.sub("0x...", text)


def outputs(cell: Any) -> Outputs:
    """A cell's outputs; consecutive stream chunks joined (how printed text is split into
    messages varies from run to run); memory addresses masked."""
    out: Outputs = []
    for o in cell.get("outputs", []):
        if o["output_type"] == "stream":
            if out and out[-1][0] == o["name"]:
                out[-1] = (o["name"], out[-1][1] + _text(o["text"]))
            else:
                out.append((o["name"], _text(o["text"])))
        elif o["output_type"] in ("execute_result", "display_data"):
            out.append((o["output_type"], _text(o["data"].get("text/plain", ""))))
        elif o["output_type"] == "error":
            out.append(("error", o["ename"]))
    return out


def _run(sources: list[str], cwd: Path, pause_after: int | None = None,
         at_pause: Any = None, timeout: int = 120) -> list[Any]:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=timeout,
                                     allow_errors=True,
                                     resources={"metadata": {"path": str(cwd)}})
    with client.setup_kernel():
        for i, cell in enumerate(nb.cells):
            client.execute_cell(cell, i)
            if i == pause_after and at_pause is not None:
                at_pause()
    return list(nb.cells)


def code_cells(path: Path) -> list[str]:
    nb = nbformat.read(path, as_version=4)
    return [c.source for c in nb.cells if c.cell_type == "code"]


_NOT_COPIED = shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", ".git", "*.hib")


def interrupt_and_resume(code: list[str], split: int, root: Path,
                         replay: bool | str = True, timeout: int = 120,
                         siblings: Path | None = None) -> Outcome:
    """Run ``code[:split]``, save, and finish two ways (see the module's docstring), in
    ``root/work``. ``replay``: True (``--replay``), "all" (``--replay all``: cells that write
    files run too) or False (no replay: only what was stored comes back). ``siblings``: the
    notebook's directory, whose files are copied into ``root/work`` first."""
    before, after = code[:split], code[split:]
    work, snapshot = root / "work", root / "snapshot"
    if siblings is not None:
        shutil.copytree(siblings, work, symlinks=True, ignore=_NOT_COPIED)
    else:
        work.mkdir(parents=True)
    session = work / "session.hib"  # absolute: a notebook may change directory
    first = ["%load_ext hibernate", *before, f"%hibernate save '{session}' --environment",
             *after]
    save_at = len(before) + 1
    ran = _run(first, work, pause_after=save_at,
               at_pause=lambda: shutil.copytree(work, snapshot, symlinks=True),
               timeout=timeout)
    saved = outputs(ran[save_at])
    reference = [outputs(c) for c in ran[save_at + 1:]]
    shutil.rmtree(work)
    snapshot.rename(work)  # the files as they were at the save
    flag = "" if replay is False else "--replay all" if replay == "all" else "--replay"
    load = f"%hibernate load '{session}' {flag} --environment"
    ran = _run(["%load_ext hibernate", load, *after], work, timeout=timeout)
    return Outcome(reference, [outputs(c) for c in ran[2:]], saved, outputs(ran[1]), after)
