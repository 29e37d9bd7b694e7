"""A session's engine values (see engines/): written by their engine before the groups, so
that a failure ends the save before anything is published; their data removed again when
the save fails, and the replaced file's data removed once the new file is in place.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from ..engines import EngineError, Location, engine_for, fresh_prefix, record_of
from ..format import How
from ..format._manifest import VALUE, Entry, Manifest

__all__ = ["EngineWrites", "engine_prefixes", "plan_engine"]


def plan_engine(name: str, value: object, mode: str, entry: Entry, can_write: bool = True
                ) -> tuple[Entry, str | None, Any]:
    """(entry, note, engine to write it) for a value an engine handles; (entry, None, None)
    for any other value. ``mode``: "auto", "write", "graph" or "skip". ``can_write``: False
    where engine data has no place yet (checkpoint stores): what would be written is
    skipped instead."""
    engine = engine_for(value)
    if engine is None:
        return entry, None, None
    try:
        decision, why = engine.choose(value, mode)
    except Exception as e:  # the policy could not look at it: pickled like any value
        return entry, f"{engine.name}: {type(e).__name__}: {e}; pickled", None
    if decision == "write" and not can_write:
        decision, why = "skip", (f"{why}; a checkpoint store does not take engine data yet: "
                                 "save it to a file")
    if decision == "skip":
        from ..format import Skip, SkipCode

        return (Entry(name, "skipped", entry.type_name, how=How.LOST,
                      skip=Skip(SkipCode.ENGINE, f"a {engine.name} value: {why}")),
                None, None)
    if decision == "graph":
        return entry, f"{engine.name} graph (pickled; needs trust): {why}", None
    return (replace(entry, how=How.ENGINE, group=None, extra={**entry.extra, "why": why}),
            f"written by {engine.name}'s workers: {why}", engine)


class EngineWrites:
    """The engine values of one save: written into fresh prefixes of ``location``, removed
    again on ``undo``."""

    def __init__(self, location: Location) -> None:
        self.location = location
        self.written: list[str] = []
        self.save_id = secrets.token_hex(8)

    def write(self, entries: dict[str, Entry], todo: dict[str, tuple[Any, object]]) -> None:
        for name, (engine, value) in todo.items():
            prefix = fresh_prefix(name, self.save_id)
            self.written.append(prefix)
            try:
                record = engine.write(value, self.location, prefix)
            except Exception as e:
                raise EngineError(f"{name}: {engine.name} could not write it "
                                  f"({type(e).__name__}: {e}); nothing was saved") from e
            extra = dict(entries[name].extra)
            record = {**record, "why": extra.pop("why", "")}
            size = sum(int(p.get("size", 0)) for p in record.get("partitions", []))
            entries[name] = replace(entries[name], size=size, extra={**extra, "engine": record})

    def undo(self) -> None:
        """Remove what this save wrote (best effort: a failure here never hides the
        failure that ended the save)."""
        for prefix in self.written:
            try:
                self.location.remove(prefix)
            except Exception:
                pass
        self.written.clear()


def engine_prefixes(entries: Iterable[Entry]) -> set[str]:
    """The prefixes a manifest's engine entries point to."""
    found = set()
    for e in entries:
        if e.how == How.ENGINE:
            try:
                found.add(record_of(dict(e.extra))["prefix"])
            except EngineError:
                continue
    return found


def previous_prefixes(read_manifest: Any) -> set[str]:
    """The prefixes of the file being replaced (none when there is no readable one)."""
    try:
        manifest: Manifest = read_manifest()
    except Exception:
        return set()
    return engine_prefixes(manifest.entries)


def is_engine_entry(entry: Entry) -> bool:
    return entry.kind == VALUE and entry.how == How.ENGINE
