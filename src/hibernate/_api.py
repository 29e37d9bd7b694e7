"""The public functions: thin compositions of capture, format, trust and restore."""

from __future__ import annotations

import os
import sys
import time
import types
from collections.abc import Callable, Iterable
from typing import Any

from . import _trust
from ._capture import plan, write_groups
from ._codecs import resolve_compression
from ._format import BlobReader, FileWriter, read_manifest
from ._manifest import Group, Manifest, SerializerRef, Skip
from ._meta import session_info
from ._prefetch import Prefetcher
from ._progress import Progress
from ._reports import LoadReport, SavedEntry, SaveReport
from ._restore import NeedsCode, Restorer, check_trust, describe, select_entries
from ._select import Selector, ipython_hidden, is_dunder
from ._snapshot import Snapshot
from .storage import resolve

__all__ = ["inspect", "load", "open", "save"]

PathLike = str | os.PathLike[str]
Names = Iterable[str] | str | None


def _namespace(namespace: dict[str, Any] | types.ModuleType | None) -> dict[str, Any]:
    if namespace is None:
        return sys.modules["__main__"].__dict__
    if isinstance(namespace, types.ModuleType):
        return namespace.__dict__
    if not isinstance(namespace, dict):
        raise TypeError("namespace must be a dict or a module")
    return namespace


def save(path: PathLike, namespace: dict[str, Any] | types.ModuleType | None = None, *,
         include: Names = None, exclude: Names = None, compression: str | None = None,
         progress: bool | None = None, storage_options: dict[str, Any] | None = None
         ) -> SaveReport:
    """Save every name of ``namespace`` (default: ``__main__``) to one file at ``path``.

    Values that cannot be serialized are skipped and listed in the report with a reason.
    The file appears atomically: a failed or interrupted save leaves the previous file.
    """
    return save_namespace(path, _namespace(namespace), Selector(include, exclude),
                          storage_options, compression=compression, progress=progress)


def save_namespace(path: PathLike, ns: dict[str, Any], select: Selector,
                   storage_options: dict[str, Any] | None = None,
                   extra: dict[str, object] | None = None,
                   session: dict[str, Any] | None = None,
                   compression: str | None = None,
                   progress: bool | None = None) -> SaveReport:
    """``save`` for a resolved namespace. ``extra``: more entries saved beside the
    namespace's (e.g. a post-mortem's frame locals); ``session``: more manifest metadata."""
    start = time.perf_counter()
    codec = resolve_compression(compression)
    key = _trust.user_key()
    store, name = resolve(path, storage_options)
    p = plan(ns, select, hidden=ipython_hidden(ns), extra=extra)
    out = store.open_write(name)
    bar = Progress("saving", _estimate(p.values.values()), progress)
    try:
        writer = FileWriter(out, codec=codec, on_bytes=bar)
        groups: list[Group] = []
        for wg in write_groups(p, writer):  # streams go to the file as they are produced
            ref = SerializerRef(wg.serializer.name, wg.serializer.version, wg.serializer.config())
            groups.append(Group(len(groups), wg.names, ref, wg.meta, tuple(wg.blobs)))
        entries = tuple(p.entries.values())
        manifest = Manifest(entries=entries, groups=tuple(groups), blobs=writer.blobs,
                            session={**session_info(entries), **(session or {})})
        size = writer.finish(manifest, key)
    except BaseException:
        out.discard()
        raise
    finally:
        bar.close()
    saved = tuple(SavedEntry(e.name, e.kind, e.type_name, e.size, e.shape, e.dtype)
                  for e in entries if e.skip is None)
    skipped = {e.name: e.skip for e in entries if e.skip is not None}
    return SaveReport(os.fspath(path), saved, skipped, size, time.perf_counter() - start)


def load(path: PathLike, namespace: dict[str, Any] | types.ModuleType | None = None, *,
         include: Names = None, exclude: Names = None, trust: bool = False,
         data_only: bool = False, mmap: bool = False, progress: bool | None = None,
         storage_options: dict[str, Any] | None = None) -> LoadReport:
    """Restore a saved session into ``namespace`` (default: ``__main__``).

    Header, trailer, manifest and signature are checked before anything is restored; an
    untrusted file that needs unpickling raises UntrustedFileError unless ``trust=True``.
    Names are bound all at once at the end; an entry that fails is reported, not raised.

    ``mmap=True`` (local files): large uncompressed buffers (numpy arrays, pandas blocks)
    become copy-on-write views of the memory-mapped file instead of being read; their chunk
    digests are then NOT checked (run ``hibernate verify FILE`` for a full check), and
    changes to the arrays never reach the file.
    """
    start = time.perf_counter()
    ns = _namespace(namespace)
    store, name = resolve(path, storage_options)
    with store.open_read(name) as src:
        manifest = read_manifest(src, _trust.user_keys())
        trusted = trust or _is_trusted(manifest)
        bar = Progress("loading", sum(b.length for b in manifest.blobs), progress)
        try:
            return restore_manifest(manifest, BlobReader(src, manifest, mmap=mmap,
                                                         on_bytes=bar).read,
                                    ns, Selector(include, exclude), trusted, data_only,
                                    os.fspath(path), start)
        finally:
            bar.close()


def restore_manifest(manifest: Manifest, read_blob: Callable[[int], Any], ns: dict[str, Any],
                     select: Selector, trusted: bool, data_only: bool, where: str,
                     start: float, keep: frozenset[str] = frozenset()) -> LoadReport:
    """Restore a checked manifest's selected entries into ``ns`` (bound all at once at the
    end). ``keep``: names whose live values are left in place (reported as kept)."""
    chosen, skipped = select_entries(manifest, select, ipython_hidden(ns))
    chosen = [e for e in chosen if e.name not in keep]
    if not data_only:
        check_trust(chosen, manifest, trusted, where)
    groups = {g.id: g for g in manifest.groups}
    order = [b for e in chosen if e.group in groups for b in groups[e.group].blobs]
    staging: dict[str, object] = {}
    failed: dict[str, str] = {}
    with Prefetcher(read_blob, order, [b.length for b in manifest.blobs]) as fetch:
        restorer = Restorer(manifest, fetch, ns, restricted=data_only or not trusted)
        for entry in chosen:
            try:
                staging[entry.name] = restorer.value(entry)
            except NeedsCode as e:
                skipped[entry.name] = Skip("untrusted", f"{e}; load with trust=True to restore")
            except Exception as e:  # one entry fails; the others load
                failed[entry.name] = describe(e)
    overwritten = tuple(n for n in staging if n in ns)
    in_file = {e.name for e in manifest.entries} - keep
    kept = tuple(n for n in ns if n not in in_file and not is_dunder(n))
    ns.update(staging)
    return LoadReport(where, tuple(staging), failed, skipped, overwritten, kept,
                      time.perf_counter() - start, manifest.signature, trusted)


def _estimate(values: Iterable[object]) -> int:
    """Bytes a save will write, for the progress line: the buffers we can size cheaply."""
    total = 0
    for v in values:
        nbytes = getattr(v, "nbytes", None) if type(v).__module__.startswith(
            ("numpy", "pandas", "pyarrow")) else None
        if isinstance(nbytes, int):
            total += nbytes
    return total


def _is_trusted(manifest: Manifest) -> bool:
    return (manifest.signature == _trust.SignatureStatus.VALID
            or _trust.is_trusted(manifest.manifest_digest))


def inspect(path: PathLike, *, storage_options: dict[str, Any] | None = None) -> Manifest:
    """The file's manifest: what it holds and how, read without running any of its code."""
    from dataclasses import replace

    store, name = resolve(path, storage_options)
    with store.open_read(name) as src:
        return replace(read_manifest(src, _trust.user_keys()), path=os.fspath(path))


def open(path: PathLike, *, trust: bool = False, data_only: bool = False,
         storage_options: dict[str, Any] | None = None) -> Snapshot:
    """A lazy, read-only mapping over the file's variables; values load on first access."""
    store, name = resolve(path, storage_options)
    src = store.open_read(name)
    try:
        manifest = read_manifest(src, _trust.user_keys())
    except BaseException:
        src.close()
        raise
    trusted = trust or _is_trusted(manifest)
    return Snapshot(os.fspath(path), src, manifest, trusted, data_only)


