"""Recording a session into a store (``checkpoint``) and restoring one (``checkout``).

A checkpoint is written by the same code as a file: ``plan`` and ``write_session`` into a
``ChunkWriter``, whose sink is the store (_cas.py) instead of a ``.hib`` file. Chunks the
store already holds are neither compressed nor written again, so an unchanged variable costs
its serialization and hashing, not its bytes. With a ``Reuse`` (autosave's knowledge of what
a cell may have touched), groups known to be clean are not even serialized: their chunks are
taken from the previous checkpoint as they are. A checkout is ``load``'s restore over the
store's chunks: the same trust decision, ``data_only``, ``progress`` and reader, and the
same ``environment`` (the manifest's ``environment`` section, captured and put back by
session/_environment.py) and ``replay``.
"""

from __future__ import annotations

import os
import time
import types
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from .._progress import Progress
from .._reports import LoadReport
from ..engines import Location
from ..errors import HibernateError, StorageError
from ..format import (
    Chunk,
    ChunkWriter,
    FastDigests,
    Feature,
    Group,
    How,
    Kind,
    Manifest,
    default_digest,
    resolve_compression,
    seal_of,
)
from ..format._kinds import FEATURES
from ..session import (
    NeedsCode,
    Selector,
    estimate_bytes,
    ipython_hidden,
    namespace_of,
    plan,
    restore_from,
    static_reference,
    write_session,
)
from ..session._engines import EngineWrites, engine_records
from ..session._environment import capture_environment, parts_of
from ..session._identity import ReachesNamespace, identity_ids
from ..session._meta import session_info
from ..session._replay import attach_slices, begin_restore, check_replay, finish_restore
from ..trust import is_trusted_manifest
from ._cas import StoreSink, StoreSource, chunk_key, known_chunks
from ._history import Checkpoint, info
from ._repo import Repo

__all__ = ["Recorded", "Reuse", "checkout", "checkpoint", "environment_section",
           "record_session", "store_features"]

Names = Iterable[str] | str | None
Parts = bool | str | Iterable[str]
FAST = FastDigests()  # this process's checkpoints: content seen before is not digested again


def checkpoint(store: str | os.PathLike[str], namespace: dict[str, Any] | types.ModuleType |
               None = None, *, message: str | None = None, include: Names = None,
               exclude: Names = None, compression: str | None = None,
               progress: bool | None = None,
               storage_options: dict[str, Any] | None = None,
               environment: Parts = False, env_vars: Iterable[str] = ()) -> Checkpoint:
    """Record the session in ``store``, writing only the chunks the store does not have.
    ``environment`` and ``env_vars`` as on ``save``."""
    return record_session(store, namespace_of(namespace), Selector(include, exclude), message,
                          storage_options, compression=compression, progress=progress,
                          sections=environment_section(environment, env_vars))[0]


def environment_section(environment: Parts, env_vars: Iterable[str] = ()
                        ) -> dict[str, Any] | None:
    """The manifest sections that hold ``environment``'s parts and ``env_vars`` (None when
    neither is asked for)."""
    parts, patterns = parts_of(environment), list(env_vars)
    return ({"environment": capture_environment(parts, patterns)}
            if parts or patterns else None)


@dataclass
class Recorded:
    """What a checkpoint leaves for the next incremental one: its manifest, the id of each
    name's object then, what each name reached, and the store's prune generation then."""

    manifest: Manifest
    ids: dict[str, int]
    reach: dict[str, set[int]]
    generation: bytes | None


@dataclass
class Reuse:
    """An incremental checkpoint: the previous one, and the names cells may have touched."""

    previous: Recorded
    dirty: set[str]

    def expand(self, ns: dict[str, Any]) -> tuple[set[str], set[int]] | None:
        """The dirty names, grown by the session functions that touched values reach, and
        the ids of every object a dirty name reaches (or that a touched module holds).
        None when a full check is needed."""
        dirty = {n for n in self.dirty if n in ns}
        dirty_ids: set[int] = set()
        todo, done = list(dirty), set()
        while todo:
            name = todo.pop()
            if name in done:
                continue
            done.add(name)
            value = ns[name]
            if isinstance(value, types.ModuleType):  # mm.L.append(...) changes what z = mm.L
                dirty_ids.update(id(v) for v in vars(value).values())
                continue
            functions: list[types.FunctionType] = []
            try:
                dirty_ids |= identity_ids(value, ns, functions)
            except ReachesNamespace:
                return None
            for f in functions:  # handlers["go"]() runs g: what g uses is touched too
                for n in _global_names(f.__code__):
                    if n in ns and n not in dirty:
                        dirty.add(n)
                        todo.append(n)
        return dirty, dirty_ids

    def clean_groups(self, ns: dict[str, Any], dirty: set[str], dirty_ids: set[int]
                     ) -> list[Group]:
        """Groups none of whose names was touched, rebound, or reaches a touched object."""
        prev = self.previous
        return [g for g in prev.manifest.groups
                if all(n in ns and n not in dirty and prev.ids.get(n) == id(ns[n])
                       and n in prev.reach and not prev.reach[n] & dirty_ids
                       for n in g.names)]


def _global_names(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _global_names(const)


class _StaleReuse(Exception):
    """A prune ran since the previous checkpoint and removed chunks it would reuse."""


class _Except(Selector):
    def __init__(self, base: Selector, names: set[str]) -> None:
        self.include, self.exclude, self._base, self._names = base.include, base.exclude, \
            base, names

    def __call__(self, name: str) -> bool:
        return name not in self._names and self._base(name)


def store_digest() -> str:
    """Stores address chunks by BLAKE3 (SHA-256 only where blake3 is missing)."""
    return default_digest()


def store_features(digest: str, blobs: Iterable[Any], engines: bool = False
                   ) -> tuple[str, ...]:
    """A store manifest's features: what its chunks actually use (its header is never
    streamed ahead of them, unlike a file's), and engine entries."""
    found = {Feature.PLACEHOLDERS}
    if engines:
        found.add(Feature.ENGINES)
    if digest == "blake3":
        found.add(Feature.BLAKE3)
    if any(c.codec == "zstd" for b in blobs for c in b.chunks):
        found.add(Feature.ZSTD)
    assert found <= set(FEATURES)
    return tuple(sorted(str(f) for f in found))


def record_session(store: str | os.PathLike[str], ns: dict[str, Any], select: Selector,
                   message: str | None, storage_options: dict[str, Any] | None = None,
                   reuse: Reuse | None = None, compression: str | None = None,
                   progress: bool | None = None, sections: dict[str, Any] | None = None
                   ) -> tuple[Checkpoint, Recorded]:
    """``checkpoint`` for a resolved namespace. With ``reuse``, the groups it finds clean are
    copied from the previous checkpoint instead of being serialized again. ``sections``:
    more manifest sections (the environment)."""
    repo = Repo(store, storage_options)
    extra = dict(sections or {})
    if reuse is not None and reuse.previous.manifest.digest == store_digest():
        try:
            return _record(repo, ns, select, message, reuse, compression, progress, extra)
        except _StaleReuse:
            pass
    return _record(repo, ns, select, message, None, compression, progress, extra)


def _record(repo: Repo, ns: dict[str, Any], select: Selector, message: str | None,
            reuse: Reuse | None, compression: str | None, progress: bool | None,
            sections: dict[str, Any]) -> tuple[Checkpoint, Recorded]:
    codec = resolve_compression(compression)
    expanded = reuse.expand(ns) if reuse is not None else None
    clean = reuse.clean_groups(ns, *expanded) if reuse is not None and expanded else []
    clean_names = {n for g in clean for n in g.names}
    p = plan(ns, _Except(select, clean_names) if clean_names else select,
             hidden=ipython_hidden(ns))
    bar = Progress("checkpointing", estimate_bytes(p.values.values()), progress)
    engine_writes = EngineWrites(engine_location(repo))
    with repo.lock():
        generation = repo.generation()
        if clean and reuse is not None and generation != reuse.previous.generation and any(
                not repo.store.exists(chunk_key(c.digest, c.codec))
                for g in clean for b in g.blobs
                for c in reuse.previous.manifest.blobs[b].chunks):
            raise _StaleReuse
        sink = StoreSink(repo.store, known_chunks(repo.store, generation))
        try:
            if p.engine_values:  # unchanged engine data of the previous checkpoint is reused
                head = repo.head()
                previous = engine_records(repo.read(head)[1].entries) if head else {}
                engine_writes.write(p.entries, p.engine_values, previous)
            writer = ChunkWriter(sink, codec, store_digest(), on_bytes=bar, fast=FAST)
            groups = [_copy_group(g, k, reuse, writer) for k, g in enumerate(clean)]
            entries, written = write_session(p, writer, first_group=len(groups))
            sink.flush()
        except BaseException:
            sink.rewind(0)  # a failed checkpoint leaves no chunks of its own behind
            engine_writes.undo()
            raise
        finally:
            sink.close()
            bar.close()
        entries = _merge(entries, clean, reuse, len(groups))
        entries, cells = attach_slices(entries, ns)
        blobs = writer.blobs
        manifest = Manifest(entries=entries, groups=(*groups, *written), blobs=blobs,
                            session=session_info(entries), digest=writer.digest,
                            features=store_features(writer.digest, blobs,
                                                    engines=bool(p.engine_values)),
                            sections=sections if cells is None
                            else {**sections, "cells": cells})
        d = manifest.to_dict()
        cid, meta = repo.write(manifest, seal_of(manifest, d),
                               {"message": message or "", "bytes_written": sink.bytes_written}, d)
        checkpoint = info(cid, meta, manifest)
    objects = {e.name: id(ns[e.name]) for e in entries if e.kind == Kind.VALUE and e.name in ns}
    reach = dict(p.reach)
    if reuse is not None:
        reach.update({n: reuse.previous.reach[n] for g in clean for n in g.names})
    return checkpoint, Recorded(manifest, objects, reach, generation)


def engine_location(repo: Repo) -> Location:
    """Where a store's engine data lives: ``engine/<save id>/<name>/`` in the store."""
    return Location(repo.url.rstrip("/") + "/engine", repo.storage_options)


def _copy_group(g: Group, gid: int, reuse: Reuse | None, writer: ChunkWriter) -> Group:
    assert reuse is not None
    blobs = reuse.previous.manifest.blobs
    return replace(g, id=gid, blobs=tuple(writer.add_chunks(list(blobs[b].chunks))
                                          for b in g.blobs))


def _merge(entries: tuple[Any, ...], clean: list[Group], reuse: Reuse | None,
           offset: int) -> tuple[Any, ...]:
    """The new plan's entries, with the clean groups' names taken from the previous
    checkpoint (their group ids renumbered to where the copies stand)."""
    if not clean or reuse is None:
        return entries
    moved = {g.id: i for i, g in enumerate(clean)}
    previous = {e.name: e for e in reuse.previous.manifest.entries}
    clean_names = {n for g in clean for n in g.names}
    out = []
    for e in entries:
        old = previous.get(e.name) if e.name in clean_names else None
        group = None if old is None else old.group
        out.append(e if old is None or group is None or group not in moved
                   else replace(old, group=moved[group]))
    return tuple(out)


def checkout(store: str | os.PathLike[str], id: str | None = None,
             namespace: dict[str, Any] | types.ModuleType | None = None, *,
             include: Names = None, exclude: Names = None, only_changed: bool = False,
             trust: bool = False, data_only: bool = False, mmap: bool = False,
             progress: bool | None = None,
             storage_options: dict[str, Any] | None = None,
             replay: bool | str = False, environment: Parts = False) -> LoadReport:
    """Restore checkpoint ``id`` (default: the latest, HEAD) into ``namespace``, and make it
    the parent of the next checkpoint (a checkpoint after an older checkout starts a
    branch). ``only_changed``: leave in place the variables whose live value serializes to
    exactly what the checkpoint holds. Trust, ``data_only``, ``mmap`` and ``progress`` act
    as they do on ``load`` (the same code; ``mmap=True`` raises ``ValueError``: a store's
    chunks are separate objects), and so do ``environment`` and ``replay``."""
    start = time.perf_counter()
    ns = namespace_of(namespace)
    parts = parts_of(environment)
    repo = Repo(store, storage_options)
    wanted = id or repo.head()
    if wanted is None:
        raise HibernateError(f"{repo.url} has no checkpoints")
    cid = repo.full_id(wanted)
    _, manifest = repo.read(cid)
    keep = unchanged(ns, manifest) if only_changed else frozenset()
    source = StoreSource(repo.store, legacy=manifest.format_version < 2)
    select = Selector(include, exclude)
    where = f"{repo.url}@{cid}"
    trusted = is_trusted_manifest(manifest, trust)
    check_replay(replay, data_only, trusted, where)
    early = begin_restore(manifest, parts, trusted, data_only)
    report = restore_from(manifest, source, ns, select=select, trust=trust,
                          data_only=data_only, mmap=mmap, progress=progress,
                          where=where, start=start, keep=keep,
                          location=engine_location(repo))
    with repo.lock():
        if repo.exists(cid):  # not pruned meanwhile
            repo.set_head(cid)
    # last: the environment may change the working directory a relative store is under
    return finish_restore(report, manifest, ns, select, parts, replay, data_only, early)


class _DigestSink:
    """A sink that keeps nothing: it only records each chunk's digest."""

    def put(self, digest: str, raw: int, stored: bytes | memoryview, codec: str) -> Chunk:
        return Chunk(0, raw, len(stored), codec, digest)

    def known(self, digest: str, raw: int) -> Chunk | None:
        return None

    def mark(self) -> int:
        return 0

    def rewind(self, mark: int) -> None:
        pass


def unchanged(ns: dict[str, Any], manifest: Manifest) -> frozenset[str]:
    """Names whose live group serializes to the checkpoint's very chunks (and references
    still bound to the same object)."""
    names = [n for g in manifest.groups for n in g.names if n in ns]
    keep: set[str] = set()
    if names:
        p = plan(ns, Selector(names, None), hidden=ipython_hidden(ns), engine_data=False)
        writer = ChunkWriter(_DigestSink(), digest=manifest.digest)
        try:
            _, groups = write_session(p, writer)
        except StorageError:
            groups = ()
        blobs = writer.blobs
        live = {g.names: [c.digest for b in g.blobs for c in blobs[b].chunks] for g in groups}
        for g in manifest.groups:
            want = [c.digest for b in g.blobs for c in manifest.blobs[b].chunks]
            if live.get(g.names) == want:
                keep.update(g.names)
    for e in manifest.entries:  # module and import references still bound to that object
        if e.how == How.REFERENCE and e.name in ns:
            try:
                if static_reference(e) is ns[e.name]:
                    keep.add(e.name)
            except NeedsCode:
                pass
    return frozenset(keep)
