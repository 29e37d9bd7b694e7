"""Restore entries from a checked manifest: select, check trust, deserialize, stage.

Nothing is bound here: values go into a staging dict, and the caller binds them all at
once, so an interrupted load leaves the target namespace as it was. A damaged blob or a
value that fails to restore fails only its own group's entries.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import time
import types
from collections.abc import Callable, Iterable
from typing import Any

from .. import engines, serializers
from .._progress import Progress
from .._reports import LoadReport, environment_differences
from ..engines import Location
from ..errors import EngineError, UntrustedFileError
from ..format import BlobReader, ChunkSource, How, Prefetcher, Skip, SkipCode, is_own
from ..format._manifest import IMPORT, MODULE, SKIPPED, VALUE, Entry, Group, Manifest
from ..serializers._code import rebuilt_from_source
from ..serializers._ipc import untrusted
from ..serializers._pickle import bound_namespace
from ..trust import is_trusted_manifest
from ..trust._restricted import RefusedGlobal, restricted_loads
from ._naming import Selector, ipython_hidden, ipython_internal, is_dunder, is_plain_name

__all__ = ["NeedsCode", "Restorer", "check_trust", "needs_code", "restore", "restore_from",
           "select_entries"]


class NeedsCode(Exception):
    """A data-only restore met an entry that needs code from the file (not an error: the
    entry is reported as untrusted and skipped)."""

_MISSING = object()


def select_entries(manifest: Manifest, select: Selector,
                   protected: frozenset[str] | None = None, trusted: bool = False
                   ) -> tuple[list[Entry], dict[str, Skip]]:
    """The entries to restore, and why the others are not. ``protected``: names the
    target IPython shell keeps for itself (never overwritten). ``trusted``: the file is the
    user's own, so builtins' names are bound as saved."""
    chosen, skipped = [], {}
    for e in manifest.entries:
        if protected is not None and (e.name in protected or ipython_internal(e.name)):
            if e.kind != SKIPPED:
                skipped[e.name] = Skip(SkipCode.IPYTHON_INTERNAL, "the live shell's own name: kept")
        elif e.kind == SKIPPED:
            if e.skip is not None and e.skip.code not in (SkipCode.DUNDER, SkipCode.EXCLUDED):
                skipped[e.name] = Skip(SkipCode.NOT_SAVED, f"{e.skip.code}: {e.skip.message}")
        elif not select(e.name):
            skipped[e.name] = Skip(SkipCode.NOT_SELECTED, "not selected by include/exclude")
        elif (not is_plain_name(e.name, builtins_too=trusted)
              and not select.explicitly_included(e.name)):
            skipped[e.name] = Skip(SkipCode.UNSAFE_NAME,
                                   "a builtin's name, from a file that is not yours: "
                                   "include it by name to bind it" if is_plain_name(
                                       e.name, builtins_too=True) else
                                   "not an identifier, or a dunder: include it by name "
                                   "to bind it")
        else:
            chosen.append(e)
    return chosen, skipped


def needs_code(entry: Entry, manifest: Manifest) -> bool:
    """Restoring this entry could run code from the file: unpickling, or importing a module
    that is not imported yet. Natively stored data (e.g. numpy arrays) needs none."""
    if entry.kind == VALUE and entry.how == How.ENGINE:
        return False  # Parquet or .npy data, read by the engine with no code from the file
    if entry.kind == VALUE:
        group = next((g for g in manifest.groups if g.id == entry.group), None)
        return group is None or group.serializer.name not in serializers.CODE_FREE
    return entry.kind in (MODULE, IMPORT) and entry.module not in sys.modules


def check_trust(entries: Iterable[Entry], manifest: Manifest, trusted: bool, path: str) -> None:
    """Raise UntrustedFileError, before anything is restored, if an untrusted file's
    selected entries need code."""
    if trusted:
        return
    names = tuple(e.name for e in entries if needs_code(e, manifest))
    if names:
        shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10
                                          else "")
        raise UntrustedFileError(
            f"{path} is not signed with your key, and loading {shown} would run code from it "
            "(unpickling or importing). If you trust whoever made the file, load it with "
            "trust=True, or add it to your trust list with `hibernate trust FILE` (which "
            "first shows what it would import and call); data_only=True loads only the "
            "entries that need no code.", names)


def import_object(module: str, qualname: str | None) -> object:
    obj: object = importlib.import_module(module)
    for part in (qualname or "").split(".") if qualname else ():
        obj = getattr(obj, part, _MISSING)
        if obj is _MISSING:
            raise AttributeError(f"module {module!r} has no attribute {qualname!r}")
    return obj


def static_reference(entry: Entry) -> object:
    """A module or import reference resolved without running any code: the module must be
    imported already, and each attribute must be in a module's or class's own namespace
    (no ``__getattr__``, no properties, no lazy imports)."""
    module = sys.modules.get(entry.module or "")
    if module is None:
        raise NeedsCode(f"would import {entry.module}, which is not imported yet")
    obj: object = module
    for part in (entry.qualname or "").split(".") if entry.kind == IMPORT else ():
        if not issubclass(type(obj), (types.ModuleType, type)):
            raise NeedsCode(f"{entry.module}.{entry.qualname} is not a plain attribute")
        try:
            obj = inspect.getattr_static(obj, part)
        except AttributeError:
            raise NeedsCode(f"{entry.module}.{entry.qualname} is not defined without running "
                            "code") from None
    if hasattr(type(obj), "__get__") and not issubclass(
            type(obj), (types.FunctionType, types.BuiltinFunctionType, type)):
        raise NeedsCode(f"{entry.module}.{entry.qualname} is a descriptor")
    return obj


class Restorer:
    """Turns entries into values; caches groups so identity holds within one Restorer."""

    def __init__(self, manifest: Manifest,
                 read_blob: Callable[[int], bytearray | memoryview],
                 target_globals: dict[str, Any], restricted: bool = False,
                 location: Location | None = None) -> None:
        """``restricted``: run no code from the file; entries that would need some raise
        NeedsCode. ``location``: where the file's engine data lives."""
        self._restricted = restricted
        self._location = location
        self._groups = {g.id: g for g in manifest.groups}
        self._read_blob = read_blob
        self._globals = target_globals
        self._cache: dict[int, dict[str, object] | Exception] = {}
        self._classes: dict[str, Any] = {}  # classes restored by value, made once per load

    def value(self, entry: Entry) -> object:
        """The restored value of one entry (raises on failure)."""
        if entry.kind in (MODULE, IMPORT) and self._restricted:
            return static_reference(entry)
        if entry.kind == MODULE:
            return importlib.import_module(entry.module or "")
        if entry.kind == IMPORT:
            return import_object(entry.module or "", entry.qualname)
        if entry.how == How.ENGINE:
            if self._location is None:
                raise EngineError("engine data is read beside a session file; this one was "
                                  "opened from elsewhere")
            return engines.restore(engines.record_of(dict(entry.extra)), self._location)
        if entry.group is None or entry.group not in self._groups:
            raise ValueError(f"entry {entry.name!r} has no data")
        values = self.group(self._groups[entry.group])
        return values[entry.name]

    def group(self, g: Group) -> dict[str, object]:
        """The group's values; a failure is remembered and raised again for each entry."""
        if g.id not in self._cache:
            try:
                self._cache[g.id] = self._load_group(g)
            except Exception as e:
                self._cache[g.id] = e
        result = self._cache[g.id]
        if isinstance(result, Exception):
            raise result
        return result

    def _load_group(self, g: Group) -> dict[str, object]:
        try:
            ser = serializers.get(g.serializer.name)
        except KeyError:
            raise ValueError(f"unknown serializer {g.serializer.name!r}; a newer hibernate "
                             "may read it") from None
        if g.serializer.version > ser.version:
            raise ValueError(f"serializer {ser.name} version {g.serializer.version} is newer "
                             f"than this hibernate's ({ser.version})")
        if self._restricted and ser.name not in serializers.CODE_FREE and ser.name != "pickle":
            raise NeedsCode(f"stored by the {ser.name} serializer, which runs code")
        buffers = [self._read_blob(b) for b in g.blobs]
        if self._restricted and ser.name == "pickle":
            try:
                with untrusted(True):  # Arrow data inside: plain types only
                    obj = restricted_loads(buffers[0], buffers[1:])
            except RefusedGlobal as e:
                raise NeedsCode(str(e)) from None
        else:
            with bound_namespace(self._globals, self._classes), untrusted(self._restricted):
                obj = ser.load(dict(g.meta), buffers)
        if not g.meta.get("multi"):
            return {g.names[0]: obj}
        if not isinstance(obj, tuple) or len(obj) != len(g.names):
            raise ValueError("a group's data does not match its names")
        return dict(zip(g.names, obj))


def describe(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


# What a failing decoder may raise that still stops a load: Ctrl-C, exit, a generator's
# close. Anything else, including a native library's panic (pyo3's PanicException is a
# BaseException, not an Exception), fails only the entry being restored: in a load, a
# checkout, and a lazy ``open()`` (so the viewer and ``%hibernate browse`` too).
PROPAGATE = (KeyboardInterrupt, SystemExit, GeneratorExit)


def restore(manifest: Manifest, read_blob: Callable[[int], Any], ns: dict[str, Any],
            select: Selector, trusted: bool, data_only: bool, where: str, start: float,
            keep: frozenset[str] = frozenset(), location: Location | None = None
            ) -> LoadReport:
    """Restore a checked manifest's selected entries into ``ns`` (bound all at once at the
    end). ``keep``: names whose live values are left in place (reported as kept)."""
    chosen, skipped = select_entries(manifest, select, ipython_hidden(ns), trusted)
    chosen = [e for e in chosen if e.name not in keep]
    if data_only:  # data only: a reference is bound only when asked for by name
        for e in [e for e in chosen if e.how == How.REFERENCE
                  and not select.explicitly_included(e.name)]:
            target = (e.module or "?") + (f".{e.qualname}" if e.kind == IMPORT and e.qualname
                                          else "")
            skipped[e.name] = Skip(SkipCode.REFERENCE, f"a reference to {target}: include "
                                   "it by name to bind it (data_only binds data only)")
            chosen.remove(e)
    if not data_only:
        check_trust(chosen, manifest, trusted, where)
    groups = {g.id: g for g in manifest.groups}
    order = [b for e in chosen if e.group in groups for b in groups[e.group].blobs]
    staging: dict[str, object] = {}
    failed: dict[str, str] = {}
    notes: dict[str, str] = {}
    with Prefetcher(read_blob, order, [b.length for b in manifest.blobs]) as fetch:
        restorer = Restorer(manifest, fetch, ns, restricted=data_only or not trusted,
                            location=location)
        for entry in chosen:
            try:
                with rebuilt_from_source() as rebuilt:
                    staging[entry.name] = restorer.value(entry)
                if rebuilt:
                    names = ", ".join(sorted({q for q, _ in rebuilt}))
                    notes[entry.name] = (f"code rebuilt from source (saved as "
                                         f"{rebuilt[0][1]} bytecode): {names}")
            except NeedsCode as e:
                skipped[entry.name] = Skip(SkipCode.UNTRUSTED,
                                           f"{e}; load with trust=True to restore")
            except BaseException as e:  # one entry fails (a native panic too); others load
                if isinstance(e, PROPAGATE):
                    raise
                failed[entry.name] = describe(e)
    overwritten = tuple(n for n in staging if n in ns)
    in_file = {e.name for e in manifest.entries} - keep
    hidden = ipython_hidden(ns)  # IPython's own names are never counted as kept
    kept = tuple(n for n in ns if n not in in_file and not is_dunder(n) and not (
        hidden is not None and (n in hidden or ipython_internal(n))))
    ns.update(staging)
    return LoadReport(where, tuple(staging), failed, skipped, overwritten, kept,
                      time.perf_counter() - start, manifest.signature, trusted,
                      {n: v for n, v in notes.items() if n in staging},
                      environment_differences(manifest.session))


def raw_buffers(manifest: Manifest) -> frozenset[int]:
    """The blobs that are raw numeric buffers, handed over as bytes and never decoded, as
    each group's serializer says (a numpy array, a pickle's out-of-band buffers but never its
    stream, a frame's numeric columns). Only these may be memory-mapped."""
    found: set[int] = set()
    for g in manifest.groups:
        try:
            ser = serializers.get(g.serializer.name)
            local = ser.raw_buffers(g.meta, len(g.blobs))
        except Exception:  # an unknown serializer fails at restore, with its reason
            continue
        found.update(g.blobs[i] for i in local)
    return frozenset(found)


def restore_from(manifest: Manifest, source: ChunkSource, ns: dict[str, Any], *,
                 select: Selector, trust: bool, data_only: bool, mmap: bool,
                 progress: bool | None, where: str, start: float,
                 keep: frozenset[str] = frozenset(),
                 location: Location | None = None) -> LoadReport:
    """``load`` of a file and ``checkout`` of a checkpoint: one trust decision, one reader,
    one progress line, one restore."""
    trusted = is_trusted_manifest(manifest, trust)
    bar = Progress("loading", sum(b.length for b in manifest.blobs), progress)
    try:
        reader = BlobReader(source, manifest.blobs, manifest.digest, mmap=mmap, on_bytes=bar,
                            mappable=raw_buffers(manifest) if mmap else frozenset(),
                            own=is_own(manifest))
        return restore(manifest, reader.read, ns, select, trusted, data_only, where, start,
                       keep, location)
    finally:
        bar.close()
