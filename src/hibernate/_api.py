"""The public functions: thin compositions of capture, format, trust and restore."""

from __future__ import annotations

import os
import time
import types
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from . import trust as _trust
from ._progress import Progress
from ._reports import LoadReport, Manifest, SavedEntry, SaveReport
from .engines import MODES, Location
from .errors import HibernateError
from .format import Blob as _Blob
from .format import (
    BlobReader,
    ChunkWriter,
    Feature,
    FileSink,
    FileSource,
    How,
    default_digest,
    features_for,
    header_bytes,
    is_own,
    read_file_manifest,
    resolve_compression,
    seal_of,
    verify_chunk,
)
from .format import Manifest as _Manifest
from .session import (
    Selector,
    Snapshot,
    estimate_bytes,
    ipython_hidden,
    namespace_of,
    plan,
    restore_from,
    write_session,
)
from .session._engines import EngineWrites, engine_prefixes, previous_prefixes
from .session._environment import capture_environment, parts_of
from .session._meta import session_info
from .session._replay import attach_slices, begin_restore, check_replay, finish_restore
from .storage import resolve
from .trust._opcodes import MalformedPickle, streamed_globals

__all__ = ["inspect", "load", "open", "save"]

PathLike = str | os.PathLike[str]
Names = Iterable[str] | str | None


def save(path: PathLike, namespace: dict[str, Any] | types.ModuleType | None = None, *,
         include: Names = None, exclude: Names = None, compression: str | None = None,
         progress: bool | None = None, storage_options: dict[str, Any] | None = None,
         environment: bool | str | Iterable[str] = False, env_vars: Iterable[str] = (),
         engines: str = "auto") -> SaveReport:
    """Save every name of ``namespace`` (default: ``__main__``) to one file at ``path``.

    Values that cannot be serialized are skipped and listed in the report with a reason.
    The file appears atomically: a failed or interrupted save leaves the previous file.
    ``environment``: True, or the parts (``"cwd"``, ``"sys_path"``, ``"options"``,
    ``"random"``, ``"warnings"``, ``"ipython"``) of the session's environment to save too;
    ``env_vars``: glob patterns of environment variables to save (none unless named).
    ``engines``: Dask and Spark values: ``"auto"`` has the engine's workers write persisted
    collections and Spark DataFrames as Parquet (or ``.npy`` blocks) beside the file and
    keeps small lazy graphs as graphs; ``"write"``, ``"graph"`` or ``"skip"`` decide for all.
    """
    parts, env_vars = parts_of(environment), list(env_vars)
    sections = ({"environment": capture_environment(parts, env_vars)}
                if parts or env_vars else None)
    return save_namespace(path, namespace_of(namespace), Selector(include, exclude),
                          storage_options, compression=compression, progress=progress,
                          sections=sections, engines=engines)


def save_namespace(path: PathLike, ns: dict[str, Any], select: Selector,
                   storage_options: dict[str, Any] | None = None,
                   extra: dict[str, object] | None = None,
                   session: dict[str, Any] | None = None,
                   compression: str | None = None,
                   progress: bool | None = None,
                   sections: dict[str, Any] | None = None,
                   engines: str = "auto") -> SaveReport:
    """``save`` for a resolved namespace. ``extra``: more entries saved beside the
    namespace's (e.g. a post-mortem's frame locals); ``session``: more manifest metadata."""
    start = time.perf_counter()
    _trust.derive_soon()  # the signing key's scrypt runs while the session is written
    if engines not in MODES:
        raise ValueError(f"engines must be one of {', '.join(MODES)}, not {engines!r}")
    codec = resolve_compression(compression)
    digest = default_digest()
    features = features_for(digest, codec.name)
    store, name = resolve(path, storage_options)
    p = plan(ns, select, hidden=ipython_hidden(ns), extra=extra, engines=engines)
    location = engine_location(path, storage_options)
    replaced: set[str] = set()
    if p.engine_values:
        features = tuple(sorted({*features, str(Feature.ENGINES)}))
        replaced = previous_prefixes(lambda: _read_manifest(store, name))
    engine_writes = EngineWrites(location)
    out = store.open_write(name)
    bar = Progress("saving", estimate_bytes(p.values.values()), progress)
    writer: ChunkWriter | None = None
    try:
        # engines first: their workers write in parallel, and a failure ends the save
        # before anything is published
        engine_writes.write(p.entries, p.engine_values)
        sink = FileSink(out, header_bytes(features))
        # chunks are placed in a thread of their own while the next value is pickled
        writer = ChunkWriter(sink, codec, digest, on_bytes=bar, background=True)
        entries, groups = write_session(p, writer)  # streams go to the file as produced
        entries, cells = attach_slices(entries, ns)
        if cells is not None:
            sections = {**(sections or {}), "cells": cells}
        manifest = _Manifest(entries=entries, groups=groups, blobs=writer.blobs,
                             session={**session_info(entries), **(session or {})},
                             digest=digest, features=features, sections=sections or {})
        writer.close()
        size = sink.finish(manifest, seal_of(manifest))
    except BaseException:
        if writer is not None:
            writer.close()  # nothing writes into the file once it is discarded
        out.discard()
        engine_writes.undo()
        raise
    finally:
        bar.close()
    for prefix in replaced - engine_prefixes(entries):  # the replaced file's engine data
        try:
            location.remove(prefix)
        except Exception:  # left behind, unreferenced (see README, engines)
            pass
    saved = tuple(SavedEntry(e.name, e.kind, e.type_name, e.size, e.shape, e.dtype)
                  for e in entries if e.skip is None)
    skipped = {e.name: e.skip for e in entries if e.skip is not None}
    lost = {", ".join(g.names): g.placeholders for g in groups if g.placeholders}
    return SaveReport(os.fspath(path), saved, skipped, size, time.perf_counter() - start, lost,
                      dict(p.notes))


def engine_location(path: PathLike, storage_options: dict[str, Any] | None) -> Location:
    """Where the engine data of the session file at ``path`` lives (beside it)."""
    return Location.beside(path, storage_options)


def _read_manifest(store: Any, name: str) -> Any:
    with store.open_read(name) as src:
        return read_file_manifest(src, _trust.user_keys())


def load(path: PathLike, namespace: dict[str, Any] | types.ModuleType | None = None, *,
         include: Names = None, exclude: Names = None, trust: bool = False,
         data_only: bool = False, mmap: bool = False, progress: bool | None = None,
         storage_options: dict[str, Any] | None = None,
         environment: bool | str | Iterable[str] = False,
         replay: bool | str = False) -> LoadReport:
    """Restore a saved session into ``namespace`` (default: ``__main__``).

    Header, trailer, manifest and signature are checked before anything is restored; an
    untrusted file that needs unpickling raises UntrustedFileError unless ``trust=True``.
    Names are bound all at once at the end; an entry that fails is reported, not raised.

    ``mmap=True`` (local files): large uncompressed buffers (numpy arrays, pandas blocks)
    become copy-on-write views of the memory-mapped file instead of being read; their chunk
    digests are then NOT checked (run ``hibernate verify FILE`` for a full check), and
    changes to the arrays never reach the file.

    ``environment``: True, or the parts of a saved environment to put back after the names
    are bound (see ``save``); data parts come back with ``data_only`` too, the parts that
    decide which code runs next (``cwd``, ``sys_path``, ``ipython``) from trusted files only.

    ``replay``: True replays, from the recorded cells, the selected variables that were not
    stored or failed to restore (cells that write files, start processes or use the network
    are not run; ``"all"`` runs them too). It runs code: trusted files only, never with
    ``data_only``.
    """
    start = time.perf_counter()
    ns = namespace_of(namespace)
    parts = parts_of(environment)
    select = Selector(include, exclude)
    _trust.derive_soon()  # the key's scrypt runs while the file is opened and read
    store, name = resolve(path, storage_options)
    with store.open_read(name) as src:
        manifest = read_file_manifest(src, _trust.user_keys())
        trusted = _trust.is_trusted_manifest(manifest, trust)
        check_replay(replay, data_only, trusted, os.fspath(path))
        early = begin_restore(manifest, parts, trusted, data_only)
        report = restore_from(manifest, FileSource(src), ns, select=select, trust=trust,
                              data_only=data_only, mmap=mmap, progress=progress,
                              where=os.fspath(path), start=start,
                              location=engine_location(path, storage_options))
    return finish_restore(report, manifest, ns, select, parts, replay, data_only, early)


def inspect(path: PathLike, *, storage_options: dict[str, Any] | None = None) -> Manifest:
    """The file's manifest: what it holds and how, read without running any of its code."""
    _trust.derive_soon()  # the key's scrypt runs while the file is opened and read
    store, name = resolve(path, storage_options)
    with store.open_read(name) as src:
        manifest = read_file_manifest(src, _trust.user_keys())
    return replace(Manifest.of(manifest), path=os.fspath(path))


def open(path: PathLike, *, trust: bool = False, data_only: bool = False,
         storage_options: dict[str, Any] | None = None) -> Snapshot:
    """A lazy, read-only mapping over the file's variables; values load on first access."""
    _trust.derive_soon()  # the key's scrypt runs while the file is opened and read
    store, name = resolve(path, storage_options)
    src = store.open_read(name)
    try:
        manifest = read_file_manifest(src, _trust.user_keys())
    except BaseException:
        src.close()
        raise
    trusted = _trust.is_trusted_manifest(manifest, trust)
    return Snapshot(os.fspath(path), src, FileSource(src), manifest, trusted, data_only,
                    location=engine_location(path, storage_options))


def verify_file(path: PathLike, *, storage_options: dict[str, Any] | None = None
                ) -> tuple[Manifest, dict[int, str]]:
    """Check every chunk digest and the signature; the manifest and the damaged blobs
    (index -> what is wrong). One chunk at a time is held in memory; nothing is decoded
    beyond the chunks' bytes."""
    _trust.derive_soon()  # the key's scrypt runs while the file is opened and read
    store, name = resolve(path, storage_options)
    damaged: dict[int, str] = {}
    with store.open_read(name) as src:
        manifest = read_file_manifest(src, _trust.user_keys())
        source = FileSource(src)
        for i, blob in enumerate(manifest.blobs):
            for c in blob.chunks:
                try:
                    verify_chunk(c, source.read_chunk(c), manifest.digest)
                except HibernateError as e:
                    damaged[i] = str(e)
                    break
    return Manifest.of(manifest), damaged


def file_globals(path: PathLike, *, storage_options: dict[str, Any] | None = None
                 ) -> tuple[Manifest, dict[tuple[str, str], list[str]]]:
    """The manifest, and every global the file's pickles name -> the variables naming it.
    Read from the opcodes, a chunk at a time: nothing is unpickled or imported, and a
    stream of any length is scanned holding a few chunks."""
    _trust.derive_soon()  # the key's scrypt runs while the file is opened and read
    store, name = resolve(path, storage_options)
    found: dict[tuple[str, str], list[str]] = {}
    with store.open_read(name) as src:
        manifest = read_file_manifest(src, _trust.user_keys())
        reader = BlobReader(FileSource(src), manifest.blobs, manifest.digest,
                            own=is_own(manifest))
        for g in manifest.groups:
            if g.serializer.name != "pickle" or not g.blobs:
                continue
            refs: list[tuple[str, str]]
            try:
                refs = list(_stream_globals(reader, g.blobs[0], manifest.blobs[g.blobs[0]]))
            except (ValueError, HibernateError) as err:
                refs = [("?", f"unreadable pickle: {err}")]
            for ref in refs:
                found.setdefault(ref, []).extend(g.names)
        for e in manifest.entries:
            if e.how == How.REFERENCE and e.module:
                found.setdefault((e.module, e.qualname or ""), []).append(e.name)
    return Manifest.of(manifest), found


def _stream_globals(reader: BlobReader, index: int, blob: _Blob) -> Iterable[tuple[str, str]]:
    """The globals a pickle stream blob names, scanned as its chunks are read. A damaged
    chunk is reported as such even after a fault the scan met first (as a whole read
    would)."""
    pieces = reader.pieces(index)
    try:
        return streamed_globals(pieces, blob.length)
    except MalformedPickle:
        while next(pieces, None) is not None:  # each chunk checked, one at a time
            pass
        raise
