"""Capture a namespace: classify every name, serialize values, group shared objects.

Each name becomes exactly one of: a module reference, an import reference, a value
(serialized), or skipped with a reason. Values that share objects with identity are put in
one group and serialized as one stream, so ``b is a`` survives; values that share nothing
stay independent, so one can be loaded, or fail, without the others.

There is one pipeline: ``plan`` classifies and groups without serializing anything, and
``write_groups`` serializes one group at a time straight into a ``ChunkWriter`` (a file's or
a checkpoint store's, the same code). A group that fails is taken back from the sink and
written again with what cannot be pickled stood in for by ``hibernate.Placeholder`` objects,
so its other members and their identity survive; only a value that is itself unpicklable
is skipped.

Non-goals: where the bytes go (see format/), deciding trust (see trust/).
"""

from __future__ import annotations

import gc
import sys
import types
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from .. import serializers
from .._reports import IPYTHON_OWN
from ..errors import HibernateError
from ..format import How, Skip, SkipCode
from ..format._manifest import IMPORT, MODULE, SKIPPED, VALUE, Entry, Group, SerializerRef
from ..serializers._pickle import MachineryError, bound_namespace, salvage
from ..serializers._resources import is_resource
from ._engines import plan_engine
from ._identity import ReachesNamespace, identity_ids
from ._naming import Selector, ipython_internal, is_dunder, is_machinery, machinery_reason

__all__ = ["Plan", "WrittenGroup", "estimate_bytes", "plan", "type_name", "write_groups",
           "write_session"]

_MISSING = object()


def type_name(obj: object) -> str:
    t = type(obj)
    module = getattr(t, "__module__", None)
    qualname = getattr(t, "__qualname__", None) or getattr(t, "__name__", "?")
    return str(qualname) if module in ("builtins", None) else f"{module}.{qualname}"


def _import_ref(obj: object, ns: dict[str, Any]) -> tuple[str, str] | None:
    """(module, qualname) if ``obj`` is importable as that and is the very same object."""
    if isinstance(obj, types.ModuleType):
        return None
    mod = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not isinstance(mod, str) or not isinstance(qualname, str) or "<" in qualname:
        return None
    if mod in ("__main__", ns.get("__name__")) or mod not in sys.modules:
        return None
    target: object = sys.modules[mod]
    for part in qualname.split("."):
        target = getattr(target, part, _MISSING)
    return (mod, qualname) if target is obj else None


def _array_info(obj: object) -> tuple[tuple[int, ...] | None, str | None]:
    """Shape and dtype for numpy/pandas objects (read only from types we know)."""
    mod = type(obj).__module__.split(".")[0]
    if mod not in ("numpy", "pandas"):
        return None, None
    try:
        shape = tuple(int(n) for n in obj.shape)  # type: ignore[attr-defined]
    except Exception:
        return None, None
    dtype = getattr(obj, "dtype", None)
    return shape, None if dtype is None else str(dtype)


def _skip_reason(name: str, value: object, ns: dict[str, Any], select: Selector,
                 hidden: frozenset[str] | None) -> Skip | None:
    if is_dunder(name):
        return Skip(SkipCode.DUNDER, "module attribute, not session state")
    if not select(name):
        return Skip(SkipCode.EXCLUDED, "not selected by include/exclude")
    if hidden is not None and (name in hidden or ipython_internal(name)):
        return Skip(SkipCode.IPYTHON_INTERNAL, IPYTHON_OWN)
    if is_machinery(value):
        return Skip(SkipCode.IPYTHON_INTERNAL, f"IPython/Jupyter machinery ({type_name(value)})")
    if value is ns:
        return Skip(SkipCode.NAMESPACE, "a reference to the namespace itself")
    return None


def _machinery_within(value: object, ns: dict[str, Any], limit: int = 100_000) -> str | None:
    """Why a value that reaches the namespace is IPython's (it holds the shell, whose
    namespace it is), or None: a bounded walk of what it references, never into ``ns``."""
    todo, seen = [value], {id(ns)}
    while todo and len(seen) < limit:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        why = machinery_reason(obj)
        if why:
            return why
        if not isinstance(obj, (type, types.ModuleType)):
            todo.extend(gc.get_referents(obj))
    return None


def _classify(name: str, value: object, ns: dict[str, Any]) -> Entry | None:
    """A module or import reference entry, or None for a value."""
    tn = type_name(value)
    if isinstance(value, types.ModuleType):
        if sys.modules.get(value.__name__) is value:
            return Entry(name, MODULE, tn, module=value.__name__, how=How.REFERENCE)
        return Entry(name, SKIPPED, tn, how=How.LOST, skip=Skip(SkipCode.UNIMPORTABLE_MODULE,
                                                   f"module {value.__name__!r} is not importable"))
    ref = _import_ref(value, ns)
    if ref is not None:
        return Entry(name, IMPORT, tn, module=ref[0], qualname=ref[1], how=How.REFERENCE)
    return None


@dataclass
class Plan:
    """A namespace classified and grouped, before anything is serialized: ``write_groups``
    then serializes one group at a time, so a save never holds every stream at once."""

    ns: dict[str, Any]
    entries: dict[str, Entry]
    values: dict[str, object]
    groups: list[tuple[str, ...]]
    reach: dict[str, set[int]]  # name -> ids of the objects with identity it reaches
    # values a distributed engine writes (name -> (engine, value)), and how each engine
    # value is saved and why (see _engines.py)
    engine_values: dict[str, tuple[Any, object]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)


def plan(ns: dict[str, Any], select: Selector, hidden: frozenset[str] | None = None,
         extra: dict[str, object] | None = None, engines: str = "auto",
         engine_data: bool = True) -> Plan:
    """Classify every name of ``ns`` and group the values (nothing is serialized).
    ``hidden``: the names IPython keeps in ``ns`` for itself, when ``ns`` is a shell's
    namespace. ``extra``: entries saved beside ``ns``'s own (their functions see ``ns``).
    ``engines``: the policy for distributed engines' values ("auto", "write", "graph",
    "skip"; see engines/); ``engine_data``: False where engine data cannot be written
    (checkpoint stores), so that what would be is skipped."""
    entries: dict[str, Entry] = {}
    values: dict[str, object] = {}
    reach: dict[str, set[int]] = {}
    engine_values: dict[str, tuple[Any, object]] = {}
    notes: dict[str, str] = {}
    with bound_namespace(ns):
        for name, value in list(ns.items()) + list((extra or {}).items()):
            entry = _classify_one(name, value, ns, select, hidden)
            if entry is None:
                shape, dtype = _array_info(value)
                planned, note, engine = plan_engine(
                    name, value, engines, Entry(name, VALUE, type_name(value), shape=shape,
                                                dtype=dtype), engine_data)
                if note is not None:
                    notes[name] = note
                if engine is not None or planned.kind == SKIPPED:
                    entries[name] = planned
                    if engine is not None:
                        engine_values[name] = (engine, value)
                    continue
            if entry is None:
                try:
                    reach[name] = identity_ids(value, ns)
                except ReachesNamespace:
                    why = _machinery_within(value, ns)
                    skip = (Skip(SkipCode.IPYTHON_INTERNAL, why) if why else
                            Skip(SkipCode.NAMESPACE, "holds the session namespace itself "
                                 "(like globals())"))
                    entry = Entry(name, SKIPPED, type_name(value), skip=skip, how=How.LOST)
                else:
                    values[name] = value
                    shape, dtype = _array_info(value)
                    entry = Entry(name, VALUE, type_name(value), shape=shape, dtype=dtype,
                                  how=How.REOPENED if is_resource(value) else How.STORED)
            entries[name] = entry
    return Plan(ns, entries, values, _group(reach), reach, engine_values, notes)


class Sink(Protocol):
    """Where ``write_groups`` puts bytes: blobs by index (a format.ChunkWriter)."""

    def add_blob(self, data: bytes | bytearray | memoryview) -> int: ...
    def open_stream(self) -> Any: ...
    def mark(self) -> Any: ...
    def rollback(self, mark: Any) -> None: ...
    def length(self, index: int) -> int: ...


@dataclass
class WrittenGroup:
    names: tuple[str, ...]
    serializer: serializers.Serializer
    meta: dict[str, Any]
    blobs: list[int]
    placeholders: tuple[Skip, ...] = ()


def write_groups(p: Plan, sink: Sink, first_group: int = 0) -> Iterator[WrittenGroup]:
    """Serialize the plan's groups straight into ``sink``, one at a time: pickle streams are
    written as they are produced (no stream is held whole in memory), arrays from their own
    memory. Entries get their group id (from ``first_group``) and size; values that fail
    become skipped entries."""
    gid = first_group
    with bound_namespace(p.ns, refuse=machinery_reason):
        for names in p.groups:
            for group in _write_group(names, p, sink):
                size = sum(sink.length(i) for i in group.blobs)
                for n in group.names:
                    p.entries[n] = replace(p.entries[n], group=gid, size=size)
                gid += 1
                yield group


class _SinkFailed(Exception):
    """The sink raised while a serializer was writing into it: not the value's fault, so
    it ends the save (re-raised as ``__cause__``) instead of skipping the value."""


def _guard(fn: Any) -> Any:
    def call(*args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as e:
            raise _SinkFailed() from e
    return call


class _GuardedStream:
    def __init__(self, stream: Any) -> None:
        self.write = _guard(stream.write)


def _write_one(names: tuple[str, ...], p: Plan, sink: Sink) -> WrittenGroup:
    """Write the names as one group (raises what serialization raises; the sink is rolled
    back by the caller)."""
    value = p.values[names[0]] if len(names) == 1 else tuple(p.values[n] for n in names)
    add = _guard(sink.add_blob)
    for ser in serializers.candidates(value):
        mark = sink.mark()
        try:
            if isinstance(ser, serializers.StreamingSerializer):  # blob 0 written as made
                stream = sink.open_stream()
                meta, buffers = ser.dump_to(value, _GuardedStream(stream), add)
                blobs = [stream.close(), *buffers]
            else:
                d = ser.dump(value)
                meta, blobs = d.meta, [add(b) for b in d.buffers]
        except serializers.Decline:
            sink.rollback(mark)
            continue
        if len(names) > 1:
            meta["multi"] = True
        return WrittenGroup(names, ser, meta, blobs)
    raise LookupError(f"no serializer handles {type(value).__name__}")


def _failure(e: Exception) -> Skip:
    if isinstance(e, RecursionError):
        return Skip(SkipCode.UNPICKLABLE, "too deeply nested to serialize")
    if isinstance(e, MachineryError):
        return Skip(SkipCode.IPYTHON_INTERNAL, str(e))
    return Skip(SkipCode.UNPICKLABLE, describe(e))


def _attempt(names: tuple[str, ...], p: Plan, sink: Sink) -> WrittenGroup | Skip:
    """Write the names as one group, or take its bytes back and say why it failed."""
    mark = sink.mark()
    try:
        return _write_one(names, p, sink)
    except _SinkFailed as e:  # the sink failed (disk full, I/O error): that ends the save
        raise e.__cause__  # type: ignore[misc]  # noqa: B904 (keeps its own __cause__)
    except HibernateError:
        raise
    except Exception as e:
        sink.rollback(mark)
        return _failure(e)


def _salvaged(names: tuple[str, ...], p: Plan, sink: Sink) -> WrittenGroup | None:
    """The group written with Placeholders where objects cannot be pickled; None when that
    fails too, or when a value is itself unpicklable (it is skipped, not stood in for)."""
    mark = sink.mark()
    with salvage() as lost:
        written = _attempt(names, p, sink)
    replaced = {i for i, _, _ in lost}
    alone_and_lost = len(names) == 1 and id(p.values[names[0]]) in replaced
    if isinstance(written, Skip) or alone_and_lost:
        sink.rollback(mark)
        return None
    seen: dict[str, Skip] = {}
    for _, tname, reason in lost:
        seen.setdefault(f"{tname}: {reason}", Skip(SkipCode.PLACEHOLDER, f"{tname}: {reason}"))
    for n in names:
        if id(p.values[n]) in replaced:
            p.entries[n] = replace(p.entries[n], how=How.PLACEHOLDER)
    written.placeholders = tuple(seen.values())
    return written


def _write_group(names: tuple[str, ...], p: Plan, sink: Sink) -> list[WrittenGroup]:
    """The group; when it fails, the group with placeholders for what cannot be pickled;
    when even that fails, its members that can be written, together if several."""
    first = _attempt(names, p, sink)
    if not isinstance(first, Skip):
        return [first]
    if first.code == SkipCode.UNPICKLABLE:
        saved = _salvaged(names, p, sink)
        if saved is not None:
            return [saved]
    if len(names) == 1:
        p.entries[names[0]] = Entry(names[0], SKIPPED, p.entries[names[0]].type_name,
                                    skip=first, how=How.LOST)
        return []
    fine = []
    for n in names:  # which members can be written alone (tried, then taken back)
        probe = sink.mark()
        if _write_group((n,), p, sink):
            fine.append(n)
        sink.rollback(probe)
    if 1 < len(fine) < len(names):
        return _write_group(tuple(fine), p, sink)
    return [g for n in fine for g in _write_group((n,), p, sink)]


def _classify_one(name: str, value: object, ns: dict[str, Any], select: Selector,
                  hidden: frozenset[str] | None) -> Entry | None:
    """A skipped, module or import entry; None for a value to serialize."""
    skip = _skip_reason(name, value, ns, select, hidden)
    if skip:
        return Entry(name, SKIPPED, type_name(value), skip=skip, how=How.LOST)
    try:
        return _classify(name, value, ns)
    except Exception as e:  # e.g. a proxy whose __getattr__ raises outside its context
        return Entry(name, SKIPPED, type_name(value), how=How.LOST,
                     skip=Skip(SkipCode.UNPICKLABLE, describe(e)))


def describe(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


def _group(reach: dict[str, set[int]]) -> list[tuple[str, ...]]:
    """Union the variables that reach a common object with identity (union-find)."""
    parent = {n: n for n in reach}

    def find(n: str) -> str:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    owner: dict[int, str] = {}
    for name, ids in reach.items():
        for i in ids:
            other = owner.setdefault(i, name)
            if other != name:
                a, b = find(other), find(name)
                if a != b:
                    parent[b] = a
    groups: dict[str, list[str]] = {}
    for n in reach:
        groups.setdefault(find(n), []).append(n)
    return [tuple(g) for g in groups.values()]


def write_session(p: Plan, writer: Sink, first_group: int = 0
                  ) -> tuple[tuple[Entry, ...], tuple[Group, ...]]:
    """Write every group of the plan into ``writer``; the manifest's entries and groups
    (numbered from ``first_group``)."""
    groups: list[Group] = []
    for wg in write_groups(p, writer, first_group):
        ref = SerializerRef(wg.serializer.name, wg.serializer.version, wg.serializer.config())
        groups.append(Group(first_group + len(groups), wg.names, ref, wg.meta,
                            tuple(wg.blobs), wg.placeholders))
    return tuple(p.entries.values()), tuple(groups)


def estimate_bytes(values: Iterable[object]) -> int:
    """Bytes a save will write, for the progress line: the buffers we can size cheaply."""
    total = 0
    for v in values:
        nbytes = getattr(v, "nbytes", None) if type(v).__module__.startswith(
            ("numpy", "pandas", "pyarrow")) else None
        if isinstance(nbytes, int):
            total += nbytes
    return total
