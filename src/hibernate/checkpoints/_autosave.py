"""Autosave in IPython/Jupyter: a checkpoint after cells, within a time budget.

After each cell (IPython's ``post_run_cell``), every ``every`` cells and no more often than
``min_interval`` seconds, the session is checkpointed into the store, on the main thread
before the next cell can run, so what is stored is the state as of the end of that cell.

Only what a cell may have touched is serialized again. The names a cell reads or writes are
read from its code, and so, transitively, are the globals used by the session's functions
and classes that it names (a method called on an instance of a session class counts), and
by the session's functions reachable from a touched value (``handlers["go"]()``). A group is
copied from the previous checkpoint as it is only when none of its names was touched or
rebound and none of its objects is reachable from a touched value, nor held directly by a
touched module (``mm.L.append(1)`` dirties ``z = mm.L``); a numpy view counts as reaching its
base. A cell that calls ``exec``, ``eval``, ``globals``, ``vars``, ``setattr`` or
``get_ipython``, and every 20th checkpoint, get a full check of every variable. What this
cannot see: a change made through an object that no touched name reaches (another thread,
a callback, a C extension holding a reference, an object deeper than one attribute inside a
touched module); the periodic full check catches it late.

The environment: each checkpoint also records the session's environment (by default every
part: working directory, ``sys.path``, options, random states, warning filters, IPython
extensions and magics; environment variables only when named), so that ``%hibernate
resume`` puts it back by ``load``'s rules.

Retention: autosave keeps the newest ``KEEP`` checkpoints (``keep=None``: all) and, with
``max_bytes``, as many of those as fit in that many bytes of stored chunks, pruning as it
goes (HEAD is always kept). Both are checked after every checkpoint. The count needs only
the store's list of checkpoints; the size cap is checked against an upper bound (the bytes
of chunks the store's checkpoints needed when last counted, plus what each autosave wrote
since), so the records are read only when that bound passes the cap, or when a checkpoint
autosave did not write appeared.

When a checkpoint takes longer than the budget, the next ones are spaced out (said once);
not for the first one, which pays what a process pays once (the signing key's derivation,
started at ``enable``, imports) and serializes everything. A failure is reported once, not
after every cell.
"""

from __future__ import annotations

import ast
import functools
import os
import sys
import time
import types
from collections.abc import Iterable, Iterator
from typing import Any

from .._reports import clean

__all__ = ["SizeCap", "disable", "enable", "touched_names"]

BUDGET = 0.5  # seconds a checkpoint may take before autosave spaces them out
FULL_EVERY = 20  # every so many checkpoints, check every variable
KEEP = 100  # autosave's retention: the newest checkpoints kept (prune as it goes)
_OPAQUE_CALLS = frozenset({"exec", "eval", "globals", "vars", "setattr", "delattr",
                           "__import__", "get_ipython"})


def _codes(obj: object, ns: dict[str, Any], seen: set[int]) -> Iterator[types.CodeType]:
    """The code of the session's own functions and classes that ``obj`` can run."""
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, types.FunctionType):
        if obj.__globals__ is ns:
            yield obj.__code__
    elif isinstance(obj, (types.MethodType, staticmethod, classmethod)):
        yield from _codes(obj.__func__, ns, seen)
    elif isinstance(obj, functools.partial):
        yield from _codes(obj.func, ns, seen)
    elif isinstance(obj, property):
        for f in (obj.fget, obj.fset, obj.fdel):
            yield from _codes(f, ns, seen)
    elif isinstance(obj, type):
        if obj.__module__ == ns.get("__name__"):
            for value in vars(obj).values():
                yield from _codes(value, ns, seen)
    elif type(obj).__module__ == ns.get("__name__"):  # an instance of a session class
        yield from _codes(type(obj), ns, seen)


def _code_names(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_names(const)


def touched_names(source: str, ns: dict[str, Any]) -> set[str] | None:
    """Names the cell may read or write, or None when that cannot be told from its code."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            names.update(node.names)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
    todo, seen = list(names), set[int]()
    while todo:
        for code in _codes(ns.get(todo.pop()), ns, seen):
            for n in _code_names(code):
                if n not in names:
                    names.add(n)
                    todo.append(n)
    return None if names & _OPAQUE_CALLS else names


class SizeCap:
    """``max_bytes`` checked cheaply after every checkpoint: ``bound`` is at least the bytes
    of the chunks the store's checkpoints need (chunks are counted once, by digest, as
    ``retain`` counts them). A checkpoint needs chunks it wrote or chunks the store already
    had, which a counted checkpoint needed (a prune leaves no others), so adding what each
    checkpoint wrote keeps it an upper bound while only this writer adds checkpoints."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bound: int | None = None  # unknown: count
        self.ids: frozenset[str] = frozenset()
        self.counts = 0  # how many times the records were read (for tests)

    def due(self, ids: Iterable[str], new_id: str, written: int) -> bool:
        """After checkpoint ``new_id`` wrote ``written`` bytes, with ``ids`` in the store:
        whether the records must be read (the bound passes the cap, or is unknown)."""
        ids = frozenset(ids)
        if self.bound is None or ids - self.ids != {new_id}:
            return True
        self.bound, self.ids = self.bound + written, ids
        return self.bound > self.max_bytes

    def count(self, store: str, options: dict[str, Any] | None) -> None:
        """Read every record: the bytes their chunks need, now."""
        from ._history import object_sizes
        from ._repo import Repo

        self.counts += 1
        self.bound = None
        repo = Repo(store, options)
        ids = frozenset(repo.ids())
        sizes = object_sizes(repo.read(cid)[1] for cid in ids)
        self.bound, self.ids = sum(sizes.values()), ids


class _Autosave:
    def __init__(self, shell: Any, store: str, every: int, min_interval: float,
                 storage_options: dict[str, Any] | None, compression: str | None = None,
                 keep: int | None = KEEP, max_bytes: int | None = None,
                 environment: bool | str | Iterable[str] = True,
                 env_vars: Iterable[str] = ()) -> None:
        from ..session._environment import parts_of

        self.shell, self.store = shell, store
        self.keep, self.max_bytes = keep, max_bytes
        self.cap = SizeCap(max_bytes) if max_bytes is not None else None
        self.environment, self.env_vars = parts_of(environment), tuple(env_vars)
        self.saved = 0
        self.warned_prune = False
        self.compression = compression
        self.every, self.min_interval = max(1, every), min_interval
        self.options = storage_options
        self.cells = 0
        self.last = 0.0
        self.warned_slow = False
        self.warned_error = False
        self.last_id: str | None = None
        self.previous: Any = None  # what the last checkpoint left (a Recorded)
        self.dirty: set[str] | None = set()
        self.since_full = 0
        self.reported: set[tuple[str, str]] = set()  # (name, type) already said not saved

    def _touched(self, result: Any) -> set[str] | None:
        raw = getattr(getattr(result, "info", None), "raw_cell", None)
        if not isinstance(raw, str):
            return None
        try:
            source = self.shell.transform_cell(raw)
        except Exception:
            return None
        return touched_names(source, self.shell.user_ns)

    def _report_skips(self) -> None:
        """Say once per name what a checkpoint could not hold (a `save` reports it in its
        table; autosave has none, and repeating it after every cell would drown the rest)."""
        from ..format import How, SkipCode

        lost = []
        for e in self.previous.manifest.entries:
            if (e.name, e.type_name) in self.reported:
                continue
            if e.skip is not None and e.skip.code in (SkipCode.UNPICKLABLE, SkipCode.NAMESPACE,
                                                      SkipCode.UNIMPORTABLE_MODULE):
                lost.append(f"{e.name} ({e.skip.message})")
            elif e.how == How.PLACEHOLDER:
                lost.append(f"{e.name} (a placeholder: it raises on use)")
            else:
                continue
            self.reported.add((e.name, e.type_name))
        if lost:
            print("hibernate autosave: not in the checkpoints (said once per name): "
                  + "; ".join(clean(x, 200) for x in lost), file=sys.stderr)

    def _cell_number(self, result: Any) -> int:
        """The cell just run (IPython counts the next one before ``post_run_cell``)."""
        n = getattr(result, "execution_count", None)
        return n if isinstance(n, int) else int(self.shell.execution_count)

    def _retain(self, checkpoint: Any) -> None:
        """Prune as autosave goes: the newest ``keep`` checkpoints, within ``max_bytes``
        (the records are read only when the size cap may be passed: see SizeCap)."""
        from ._history import retain
        from ._repo import Repo

        cap = self.cap
        try:
            size_due = cap is not None and cap.due(Repo(self.store, self.options).ids(),
                                                   checkpoint.id, checkpoint.bytes_written)
            if self.keep is None and not size_due:
                return
            retain(self.store, keep_last=self.keep,
                   max_bytes=cap.max_bytes if cap is not None and size_due else None,
                   storage_options=self.options)
            if cap is not None and size_due:
                cap.count(self.store, self.options)
        except Exception as e:  # the checkpoint itself is safe; say it once
            if cap is not None:
                cap.bound = None  # count again next time
            if not self.warned_prune:
                print(f"hibernate autosave: pruning failed (said once): "
                      f"{type(e).__name__}: {clean(str(e), 300)}", file=sys.stderr)
                self.warned_prune = True

    def __call__(self, result: Any = None) -> None:
        self.cells += 1
        touched = self._touched(result)
        self.dirty = None if touched is None or self.dirty is None else self.dirty | touched
        now = time.monotonic()
        if self.cells % self.every or now - self.last < self.min_interval:
            return
        from ..session import Selector
        from ._record import Reuse, environment_section, record_session

        ns = self.shell.user_ns
        full = self.previous is None or self.dirty is None or self.since_full >= FULL_EVERY
        reuse = None if full else Reuse(self.previous, self.dirty or set())
        start = time.monotonic()
        try:
            c, self.previous = record_session(
                self.store, ns, Selector(None, None),
                f"autosave after cell {self._cell_number(result)}", self.options, reuse,
                compression=self.compression,
                sections=environment_section(self.environment, self.env_vars))
            self.dirty = set()
            self.since_full = 0 if full else self.since_full + 1
            self.last_id = c.id
            self.warned_error = False
            self._report_skips()
            self.saved += 1
            self._retain(c)
        except Exception as e:
            if not self.warned_error:
                print(f"hibernate autosave failed (said once): {type(e).__name__}: {e}",
                      file=sys.stderr)
                self.warned_error = True
            return
        finally:
            self.last = time.monotonic()
        took = self.last - start
        if took > BUDGET and self.saved > 1 and self.min_interval < 10 * took:
            self.min_interval = 10 * took
            if not self.warned_slow:
                print(f"hibernate autosave: a checkpoint took {took:.1f} s; checkpointing at "
                      f"most every {self.min_interval:.0f} s from now on (said once)",
                      file=sys.stderr)
                self.warned_slow = True


_active: dict[int, _Autosave] = {}


def enable(shell: Any, store: str, every: int = 1, min_interval: float = 0.0,
           storage_options: dict[str, Any] | None = None, compression: str | None = None,
           keep: int | None = KEEP, max_bytes: int | None = None,
           environment: bool | str | Iterable[str] = True,
           env_vars: Iterable[str] = ()) -> None:
    """Checkpoint after cells into ``store`` (a local path is made absolute now: a later
    ``os.chdir`` does not move it); keep the newest ``keep`` checkpoints (None: all) within
    ``max_bytes`` of stored chunks (None: no cap); record the ``environment`` parts (all by
    default) and the environment variables matching ``env_vars``, as ``save`` does."""
    from ..trust import derive_soon

    disable(shell)
    derive_soon()  # the key's scrypt runs now, not in the first checkpoint's time
    if "://" not in store:
        store = os.path.abspath(store)
    hook = _Autosave(shell, store, every, min_interval, storage_options, compression,
                     keep, max_bytes, environment, env_vars)
    _active[id(shell)] = hook
    shell.events.register("post_run_cell", hook)


def disable(shell: Any) -> None:
    hook = _active.pop(id(shell), None)
    if hook is not None:
        shell.events.unregister("post_run_cell", hook)
