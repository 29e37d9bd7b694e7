"""A session's engine values (see engines/): written by their engine before the groups, so
that a failure ends the save before anything is published; their data removed again when
the save fails, and the replaced file's data removed once the new file is in place.
"""

from __future__ import annotations

import posixpath
import secrets
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from ..engines import EngineError, Location, engine_for, fresh_prefix, record_of
from ..format import How
from ..format._manifest import VALUE, Entry, Manifest

__all__ = ["EngineWrites", "engine_prefixes", "engine_records", "plan_engine",
           "previous_prefixes"]


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

    def write(self, entries: dict[str, Entry], todo: dict[str, tuple[Any, object]],
              previous: dict[str, dict[str, Any]] | None = None) -> None:
        """Write each value (or, where ``previous`` has a record of the same data that is
        still there, reuse it: a checkpoint does not write unchanged engine data again)."""
        for name, (engine, value) in todo.items():
            token = _token(engine, value)
            record = self._reusable((previous or {}).get(name), engine.name, token)
            if record is None:
                prefix = fresh_prefix(name, self.save_id)
                self.written.append(prefix)
                try:
                    record = engine.write(value, self.location, prefix)
                except Exception as e:
                    raise EngineError(f"{name}: {engine.name} could not write it "
                                      f"({type(e).__name__}: {e}); nothing was saved") from e
                if token is not None:
                    record["token"] = token
            extra = dict(entries[name].extra)
            record = {**record, "why": extra.pop("why", record.get("why", ""))}
            size = sum(int(p.get("size", 0)) for p in record.get("partitions", []))
            entries[name] = replace(entries[name], size=size, extra={**extra, "engine": record})

    def _reusable(self, record: dict[str, Any] | None, engine: str, token: str | None
                  ) -> dict[str, Any] | None:
        if record is None or token is None or record.get("token") != token:
            return None
        try:
            record = record_of({"engine": record})
            if record["engine"] != engine:
                return None
            fs, root = self.location.filesystem()
            if not all(fs.exists(posixpath.join(root, p["path"]))
                       for p in record["partitions"]):
                return None  # pruned, or removed: written again
        except Exception:
            return None
        return dict(record)

    def undo(self) -> None:
        """Remove what this save wrote (best effort: a failure here never hides the
        failure that ended the save)."""
        for prefix in self.written:
            try:
                self.location.remove(prefix)
            except Exception:
                pass
        self.written.clear()


def _token(engine: Any, value: object) -> str | None:
    token = getattr(engine, "token", None)
    if token is None:
        return None
    try:
        found = token(value)
    except Exception:
        return None
    return found if isinstance(found, str) else None


def engine_records(entries: Iterable[Entry]) -> dict[str, dict[str, Any]]:
    """name -> engine record, of a manifest's engine entries."""
    return {e.name: dict(e.extra["engine"]) for e in entries
            if e.how == How.ENGINE and isinstance(e.extra.get("engine"), dict)}


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


def copy_engine_data(entries: Iterable[Entry], source: Location, target: Location) -> list[str]:
    """Copy the engine data the entries' records name from ``source`` to ``target`` (export
    and import of checkpoints), each partition checked against its digest on the way;
    returns the prefixes written (for ``Location.remove`` if the copy fails later)."""
    import hashlib

    src_fs, src_root = source.filesystem()
    dst_fs, dst_root = target.filesystem()
    written: list[str] = []
    for record in engine_records(entries).values():
        record = record_of({"engine": record})
        written.append(record["prefix"])
        for part in record["partitions"]:
            data = src_fs.cat_file(posixpath.join(src_root, part["path"]))
            if "blake3" in part:
                import blake3

                digest, want = blake3.blake3(data).hexdigest(), part["blake3"]
            else:
                digest, want = hashlib.sha256(data).hexdigest(), part.get("sha256")
            if len(data) != part["size"] or digest != want:
                raise EngineError(f"damaged engine data: {part['path']} does not match its "
                                  "recorded digest")
            path = posixpath.join(dst_root, part["path"])
            dst_fs.makedirs(posixpath.dirname(path), exist_ok=True)
            dst_fs.pipe_file(path, data)
    return written
