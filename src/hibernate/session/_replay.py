"""Replay: recording the cells that made each variable, and running them again for the
variables that could not be stored or restored.

At save time the session's cells are known in IPython and Jupyter (the shell's history,
and which cells raised, when the extension was loaded before they ran) and for scripts run
by ``hibernate run`` (their top-level statements). For each variable (stored or not) the
slice of cells that recreates it is recorded on its entry (``replay``: cell numbers), and
the cells of all slices in the manifest's ``cells`` section, each with the side effects its
code shows. An entry that could not be stored but has a slice comes back ``replayed``.

At load time, ``replay=True`` runs, for the selected variables that are missing, failed or
came back as placeholders,
the union of their slices in order, in the target namespace itself (from the directory the
session started in), so that the functions and generators the cells make see the live
globals, as they did; cells flagged as acting outside the session (writing files, starting
processes, using the network) are not run unless ``replay="all"``. Afterwards every name that
was restored gets its own object back and names the cells made are removed: only the
missing variables keep what the cells made, and nothing restored is overwritten (slices
recompute what they read, so restored objects are not changed). A cell that raises (and
did not raise when recorded) fails only the variables whose slices hold it.

Non-goals: replaying what a slice reads from files that changed since; cells outside the
recorded history (``%run`` scripts are opaque cells, run as recorded).
"""

from __future__ import annotations

import ast
import gc
import os
import sys
import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from .._placeholder import Placeholder
from .._reports import IPYTHON_OWN, LoadReport
from ..errors import UntrustedFileError
from ..format import How, Kind
from ..format._manifest import Entry, Manifest
from ._cells import Cell, effects_in_order
from ._environment import restore_environment
from ._naming import Selector, ipython_hidden, is_dunder
from ._slicing import Slicer

__all__ = ["attach_slices", "begin_restore", "check_replay", "finish_restore",
           "record_script_cells", "recorded_cells", "replay",
           "session_cells", "track_failures", "with_replay"]

# Cells of scripts run by ``hibernate run`` and the directory they started in, by id of
# their namespace.
_script_cells: dict[int, tuple[list[Cell], str]] = {}
# IPython cells that raised, by id of the shell (filled by track_failures' hook).
_failed_cells: dict[int, set[int]] = {}


def record_script_cells(ns: dict[str, Any], cells: list[Cell]) -> None:
    """``hibernate run``: the statements run so far in ``ns`` (the list is kept and grown
    by the runner as it goes), started in the current directory."""
    _script_cells[id(ns)] = (cells, os.getcwd())


def track_failures(shell: Any) -> None:
    """Remember which IPython cells raise (``%load_ext hibernate`` calls this)."""
    if id(shell) in _failed_cells:
        return
    failed = _failed_cells.setdefault(id(shell), set())

    def post_run_cell(result: Any) -> None:
        if not getattr(result, "success", True):
            n = getattr(result, "execution_count", None)
            if isinstance(n, int):
                failed.add(n)

    shell.events.register("post_run_cell", post_run_cell)


def session_cells(ns: dict[str, Any]) -> tuple[str, list[Cell], str] | None:
    """(origin, the cells that ran in ``ns`` before now, the directory the first ran in),
    or None when unknown."""
    if id(ns) in _script_cells:
        cells, start = _script_cells[id(ns)]
        return "script", list(cells), start
    if ipython_hidden(ns) is None:
        return None
    shell = sys.modules["IPython"].get_ipython()
    history = list(getattr(shell.history_manager, "input_hist_parsed", []))
    current = int(getattr(shell, "execution_count", len(history)))
    failed = _failed_cells.get(id(shell), set())
    cells = [Cell(n, code, n in failed) for n, code in enumerate(history)
             if 0 < n < current and isinstance(code, str) and code.strip()]
    dirs = ns.get("_dh")  # IPython's directory history: where the shell started
    first = dirs[0] if isinstance(dirs, list) and dirs else None
    start = os.fspath(first) if isinstance(first, (str, os.PathLike)) else os.getcwd()
    return "ipython", cells, start


def attach_slices(entries: Sequence[Entry], ns: dict[str, Any]
                  ) -> tuple[tuple[Entry, ...], dict[str, Any] | None]:
    """Entries with their replay slices, and the ``cells`` section (None when the
    session's cells are unknown or no variable has a slice). Recording slices is a help,
    never a condition: if the analysis fails on some code, the save goes on without them
    (said once on stderr)."""
    try:
        return _attach_slices(entries, ns)
    except Exception as e:  # a bug in the analysis must never cost the user a save
        global _said_failure
        if not _said_failure:
            print(f"hibernate: replay slices not recorded ({type(e).__name__}: {e})",
                  file=sys.stderr)
            _said_failure = True
        return tuple(entries), None


_said_failure = False


def _attach_slices(entries: Sequence[Entry], ns: dict[str, Any]
                   ) -> tuple[tuple[Entry, ...], dict[str, Any] | None]:
    found = session_cells(ns)
    if found is None:
        return tuple(entries), None
    origin, cells, start = found
    slicer = Slicer(cells)
    used: set[int] = set()
    out = []
    for e in entries:
        # what the user made, not IPython's own names (In, _i3, get_ipython, ...): a new
        # shell has its own, and a cell hibernate cannot see into (exec) must not claim them
        replayable = e.kind == Kind.VALUE or (
            e.kind == Kind.SKIPPED and e.skip is not None
            and e.skip.code in ("unpicklable", "namespace", "ipython-internal")
            and e.skip.message != IPYTHON_OWN)
        if not replayable:
            out.append(e)
            continue
        numbers = slicer.slice([e.name])
        if not numbers:
            out.append(e)
            continue
        used.update(numbers)
        how = How.REPLAYED if e.kind == Kind.SKIPPED else e.how
        out.append(replace(e, how=how, extra={**e.extra, "replay": numbers}))
    if not used:
        return tuple(out), None
    effects = effects_in_order(slicer.infos)
    section = {"origin": origin, "cwd": start, "cells": [
        {"number": c.number, "code": c.code, "failed": c.failed, "effects": list(found)}
        for c, found in zip(cells, effects) if c.number in used]}
    return tuple(out), section


def recorded_cells(manifest: Manifest) -> dict[int, dict[str, Any]]:
    """The manifest's recorded cells by number (checked: plain data only)."""
    section = manifest.sections.get("cells")
    out: dict[int, dict[str, Any]] = {}
    if not isinstance(section, dict) or not isinstance(section.get("cells"), list):
        return out
    for c in section["cells"]:
        if (isinstance(c, dict) and isinstance(c.get("number"), int)
                and isinstance(c.get("code"), str)):
            effects = c.get("effects")
            out[c["number"]] = {"code": c["code"], "failed": c.get("failed") is True,
                                "effects": [str(x) for x in effects]
                                if isinstance(effects, list) else []}
    return out


def _slice_of(entry: Entry) -> tuple[int, ...]:
    cells = entry.extra.get("replay")
    if isinstance(cells, list) and all(isinstance(n, int) for n in cells):
        return tuple(cells)
    return ()


def _holds_placeholder(value: object, ns: dict[str, Any], limit: int = 100_000) -> bool:
    """Whether ``value`` itself reaches a Placeholder (part of it could not be stored),
    looking at no more than ``limit`` objects; functions are followed through their
    closures and defaults, never their globals (``ns``)."""
    seen: set[int] = {id(ns)}
    frontier = [value]
    while frontier and len(seen) < limit:
        walk, nxt = [], []
        for obj in frontier:
            if id(obj) in seen or isinstance(obj, (type, types.ModuleType, str, bytes)):
                continue
            seen.add(id(obj))
            if isinstance(obj, Placeholder):
                return True
            if isinstance(obj, types.FunctionType):
                nxt += [*(obj.__closure__ or ()), obj.__defaults__, obj.__kwdefaults__]
            else:
                walk.append(obj)
        frontier = [*nxt, *(gc.get_referents(*walk) if walk else [])]
    return False


def replay(manifest: Manifest, ns: dict[str, Any], restored: Sequence[str],
           failed: Mapping[str, str], select: Selector, run_all: bool
           ) -> tuple[dict[str, tuple[int, ...]], dict[str, str], dict[str, str]]:
    """Replay the slices of the selected variables that were not restored, failed, or came
    back holding placeholders. Returns (plan: name -> cells, replayed: name -> note, failed:
    name -> why). Prints the plan first.

    The cells run in ``ns`` itself, from the directory the recorded session started in (so
    that generators and functions they make see ``ns`` as their globals, as they did), and
    then everything else is put back: every name bound before the replay gets its own
    object again, names the replay made are removed, and only the planned variables are
    bound. Slices recompute what they read, so the objects of restored names are not
    changed by the replay (only objects made outside the recorded cells could be)."""
    cells = recorded_cells(manifest)
    done = set(restored)
    plan: dict[str, tuple[int, ...]] = {}
    for e in manifest.entries:
        numbers = _slice_of(e)
        if not numbers or not select(e.name):
            continue
        missing = e.how == How.REPLAYED or (e.name in failed and e.name not in done)
        partial = e.name in done and (e.how == How.PLACEHOLDER or (
            e.name in ns and _holds_placeholder(ns[e.name], ns)))
        if missing or partial:
            plan[e.name] = numbers
    if not plan:
        return {}, {}, {}
    order = sorted({n for numbers in plan.values() for n in numbers})
    held = {n: cells[n]["effects"] for n in order if n in cells and cells[n]["effects"]}
    lines = [f"  {name} <- cells {', '.join(map(str, numbers))}"
             for name, numbers in plan.items()]
    lines += [f"  cell {n} {'; '.join(e)}: "
              f"{'runs (replay=all)' if run_all else 'not run (replay=all runs it)'}"
              for n, e in held.items()]
    print("hibernate replay:\n" + "\n".join(lines))
    before = dict(ns)
    here = os.getcwd()
    start = _start_directory(manifest)
    broken: dict[int, str] = {}
    extra: dict[str, object] = {}
    stopped: dict[str, int] = {}  # variable -> the first of its cells that broke
    made: dict[str, object] = {}
    try:
        if start is not None:
            os.chdir(start)
        ns.setdefault("__builtins__", __builtins__)
        for n in order:
            # a cell runs only for a variable whose slice is whole so far: after a cell of
            # it was held back or failed, the later ones would change restored objects
            alive = [t for t, numbers in plan.items() if n in numbers and t not in stopped]
            if not alive:
                continue
            cell = cells.get(n)
            if cell is None:
                broken[n] = "its code is not in the file"
            elif n in held and not run_all:
                broken[n] = f"it {'; '.join(held[n])} (replay='all' runs it)"
            else:
                try:
                    code = compile(ast.parse(cell["code"]), f"<replayed cell {n}>", "exec")
                    exec(code, ns)  # noqa: S102 (replay is code from a trusted file)
                except Exception as e:
                    if not cell["failed"]:
                        broken[n] = f"it raised {type(e).__name__}: {e}"
            if n in broken:
                stopped.update(dict.fromkeys(alive, n))
        made = {name: ns[name] for name in plan if name in ns
                and (name not in before or ns[name] is not before[name])}
        # variables of the saved session that the replay made and the namespace lacks
        # (left out by include=): what was replayed reads them, so they stay
        session = {e.name for e in manifest.entries if not is_dunder(e.name)}
        extra = {name: ns[name] for name in ns
                 if name not in before and name in session and name not in plan}
    finally:
        os.chdir(here)
        for name in [k for k in ns if k not in before]:
            del ns[name]
        for name, value in before.items():
            if ns.get(name, _MISSING) is not value:
                ns[name] = value
    replayed: dict[str, str] = {}
    lost: dict[str, str] = {}
    for name, numbers in plan.items():
        if name in stopped:
            lost[name] = f"replay: needs cell {stopped[name]}, and {broken[stopped[name]]}"
        elif name not in made:
            lost[name] = "replay: the recorded cells did not make it"
        else:
            ns[name] = made[name]
            replayed[name] = f"replayed: cells {', '.join(map(str, numbers))}"
    if replayed:
        for name, value in extra.items():
            ns[name] = value
            replayed[name] = "bound by the replay (the replayed variables read it)"
    return plan, replayed, lost


_MISSING = object()


def _start_directory(manifest: Manifest) -> str | None:
    section = manifest.sections.get("cells")
    start = section.get("cwd") if isinstance(section, dict) else None
    return start if isinstance(start, str) and os.path.isdir(start) else None


def with_replay(report: LoadReport, manifest: Manifest, ns: dict[str, Any],
                select: Selector, mode: bool | str) -> LoadReport:
    """``report`` after replaying (``mode``: True, or "all" to run flagged cells too) what
    it did not restore."""
    plan, replayed, lost = replay(manifest, ns, report.restored, report.failed, select,
                                  run_all=mode == "all")
    if not plan:
        return report
    failed = {n: r for n, r in report.failed.items() if n not in replayed}
    failed.update(lost)
    return replace(report, restored=(*(n for n in report.restored
                                       if n not in replayed and n not in lost), *replayed),
                   failed=failed,
                   skipped={n: s for n, s in report.skipped.items()
                            if n not in replayed and n not in lost},
                   notes={**report.notes, **replayed}, replay_plan=plan)


def check_replay(mode: bool | str, data_only: bool, trusted: bool, where: str) -> None:
    """Raise before anything is restored when replay cannot run."""
    if mode not in (False, True, "all"):
        raise ValueError(f"replay must be False, True or 'all', not {mode!r}")
    if mode and data_only:
        raise ValueError("replay runs recorded cells (code): it cannot be combined with "
                         "data_only=True")
    if mode and not trusted:
        raise UntrustedFileError(
            f"{where}: replay runs the file's recorded cells, and this file is not yours "
            "(not signed with your key nor on your trust list): look at its cells with "
            "`hibernate trust FILE`, then trust it or load with trust=True")


# parts put back before the values are: module references may import from their entries
EARLY = ("sys_path",)


def _saved_environment(manifest: Manifest) -> Mapping[str, Any]:
    saved = manifest.sections.get("environment")
    return saved if isinstance(saved, Mapping) else {}


def begin_restore(manifest: Manifest, parts: Iterable[str], trusted: bool,
                  data_only: bool) -> dict[str, str]:
    """Before the values: the early parts of the environment asked for (``sys.path``, so
    that a module the session imported from an entry it added imports again)."""
    early = [p for p in parts if p in EARLY]
    return restore_environment(_saved_environment(manifest), early, trusted, data_only,
                               env_vars=False) if early else {}


def finish_restore(report: LoadReport, manifest: Manifest, ns: dict[str, Any],
                   select: Selector, parts: Iterable[str], replay: bool | str,
                   data_only: bool, early: Mapping[str, str] | None = None) -> LoadReport:
    """After the names are bound: the environment's other ``parts`` (before a replay: its
    cells may use the directory, options and magics), then the replay, then the data parts
    again (the replayed cells drew numbers and set options). Trusted parts by
    ``report.trusted``; ``early``: what ``begin_restore`` did."""
    parts = tuple(parts)
    early = early or {}
    saved = _saved_environment(manifest)
    if parts:
        outcome = restore_environment(saved, [p for p in parts if p not in early],
                                      report.trusted, data_only)
        done = {**early, **outcome}
        report = replace(report, environment_restored={
            p: done[p] for p in [*parts, *done] if p in done})
    if replay:
        report = with_replay(report, manifest, ns, select, replay)
        again = [p for p in parts if p in ("options", "random", "warnings")]
        if again and report.replay_plan:
            restore_environment(saved, again, report.trusted, data_only)
    return report
