"""Slices: for a name, the cells whose replay, in order, recreates it as it was after the
last cell (from each cell's ``CellInfo``; see ``_cells`` for the analysis and its rules).

Non-goals: running cells (``_replay``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ._cells import _BUILTINS, RANDOM, Cell, CellInfo, analyze

__all__ = ["Slicer", "slice_for"]


def slice_for(names: Iterable[str], cells: Sequence[Cell],
              infos: Sequence[CellInfo] | None = None) -> list[int]:
    """The numbers of the cells (in order) whose replay recreates ``names`` as they are
    after the last of ``cells``."""
    return Slicer(cells, infos).slice(names)


class Slicer:
    """Slices over one list of cells (analyzed once; each ``slice`` walks back from the
    end)."""

    def __init__(self, cells: Sequence[Cell], infos: Sequence[CellInfo] | None = None) -> None:
        self.cells = list(cells)
        self.infos = list(infos) if infos is not None else [analyze(c.code) for c in cells]
        # what each cell really reads, binds and changes once the session's own functions
        # it names are expanded (with their definitions as of that cell)
        self.reads: list[set[str]] = []
        self.maybe: list[set[str]] = []
        self.binds: list[set[str]] = []
        self.changes: list[set[str]] = []
        known: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
        classes: set[str] = set()  # the session's classes among ``known``
        imported: set[str] = set()  # names bound to what an import gave (modules...)
        aliases: dict[str, str] = {}
        for info in self.infos:
            r, b, c = set(info.reads), set(info.binds), set(info.changes)
            c -= imported  # pd.read_csv(...) does not change pd: it comes back by reference
            for name in info.binds - info.imports:
                aliases.pop(name, None)
            aliases.update(info.aliases)
            # the global random generators: every draw changes what the next one gives
            for name, _ in info.calls:
                head, _, rest = name.partition(".")
                full = aliases.get(head, head) + (f".{rest}" if rest else "")
                if full.startswith(("random.", "numpy.random.")):
                    r.add(RANDOM)
                    c.add(RANDOM)
                    if full in ("random.seed", "numpy.random.seed", "random.setstate",
                                "numpy.random.set_state"):
                        b.add(RANDOM)  # a known state from here on
            # calls the code does not name (a method of a session class on an instance, a
            # function kept in a dict, a partial): they may run any of the session's code
            unknown = [n for n in info.called
                       if n not in known and n not in imported and n not in _BUILTINS]
            if info.dynamic or unknown:
                every = list(known.values())
            elif [n for n in info.receivers if n not in imported]:
                every = [known[k] for k in classes if k in known]
            else:
                every = []
            for f_reads, f_writes in every:
                r |= f_reads
                b |= f_writes
                c |= f_reads
            todo, seen = list(r | c), set()
            while todo:
                n = todo.pop()
                if n in seen or n not in known:
                    continue
                seen.add(n)
                f_reads, f_writes = known[n]
                r |= f_reads
                b |= f_writes
                c |= f_reads  # a function may change what it reaches (globals it names)
                todo.extend(f_reads)
            for fn, spec in info.functions.items():
                known[fn] = spec
                r |= spec[0] - b  # a def reads (at call time) what its body reads
            classes |= {fn for fn in info.functions if fn in info.binds and fn[:1].isupper()}
            imported -= b - info.imports
            imported |= info.imports
            self.maybe.append(set(info.maybe))
            self.reads.append(r)
            self.binds.append(b)
            self.changes.append(c)
        self.stars = [i for i, info in enumerate(self.infos) if info.star]

    def slice(self, names: Iterable[str]) -> list[int]:
        infos, changes, reads = self.infos, self.changes, self.reads
        wanted: set[int] = set()
        todo = [(n, len(self.cells)) for n in names]
        seen: set[tuple[str, int]] = set()
        while todo:
            self._walk(todo, seen, wanted)
            # later cells may read files relative to where earlier ones moved
            last = max(wanted, default=-1)
            for i, info in enumerate(infos):
                if info.chdir and i < last and i not in wanted:
                    wanted.add(i)
                    todo += [(used, i) for used in reads[i] | changes[i]]
        return [self.cells[i].number for i in sorted(wanted)]

    def _walk(self, todo: list[tuple[str, int]], seen: set[tuple[str, int]],
              wanted: set[int]) -> None:
        infos, binds, changes, reads = self.infos, self.binds, self.changes, self.reads
        while todo:
            name, end = todo.pop()
            if (name, end) in seen:
                continue
            seen.add((name, end))
            start = None
            maybes = []  # cells that may bind it (in a branch): the search goes on past them
            for i in range(end - 1, -1, -1):
                if name in binds[i] and name not in self.maybe[i]:
                    start = i
                    break
                if name in binds[i] or infos[i].opaque:
                    maybes.append(i)
            if start is None and not maybes and not any(i < end for i in self.stars):
                continue  # a builtin, or made outside the recorded cells
            lo = start if start is not None else 0
            chosen = [i for i in range(lo, end)
                      if i == start or i in maybes or name in changes[i] or infos[i].opaque
                      or infos[i].star]
            for i in chosen:
                if i in wanted:
                    continue
                wanted.add(i)
                for used in reads[i] | changes[i]:
                    todo.append((used, i))
