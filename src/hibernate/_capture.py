"""Capture a namespace: classify every name, serialize values, group shared objects.

Each name becomes exactly one of: a module reference, an import reference, a value
(serialized), or skipped with a reason. Values that share objects with identity are put in
one group and serialized as one stream, so ``b is a`` survives; values that share nothing
stay independent, so one can be loaded, or fail, without the others.

Non-goals: writing bytes (see _format), deciding trust (see _trust).
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any, Protocol

from . import serializers
from ._identity import ReachesNamespace, identity_ids
from ._manifest import IMPORT, MODULE, SKIPPED, VALUE, Entry, Skip
from ._select import Selector, ipython_internal, is_dunder, is_machinery
from .errors import HibernateError
from .serializers import Dumped
from .serializers._pickle import MachineryError, bound_namespace

__all__ = ["Captured", "capture"]

_MISSING = object()


@dataclass
class CapturedGroup:
    names: tuple[str, ...]
    serializer: serializers.Serializer
    dumped: Dumped


@dataclass
class Captured:
    entries: list[Entry]
    groups: list[CapturedGroup]
    reach: dict[str, set[int]]


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
        return Skip("dunder", "module attribute, not session state")
    if not select(name):
        return Skip("excluded", "not selected by include/exclude")
    if hidden is not None and (name in hidden or ipython_internal(name)):
        return Skip("ipython-internal", "IPython's own history and helpers")
    if is_machinery(value):
        return Skip("ipython-internal", f"IPython/Jupyter machinery ({type_name(value)})")
    if value is ns:
        return Skip("namespace", "a reference to the namespace itself")
    return None


def _classify(name: str, value: object, ns: dict[str, Any]) -> Entry | None:
    """A module or import reference entry, or None for a value."""
    tn = type_name(value)
    if isinstance(value, types.ModuleType):
        if sys.modules.get(value.__name__) is value:
            return Entry(name, MODULE, tn, module=value.__name__)
        return Entry(name, SKIPPED, tn, skip=Skip("unimportable-module",
                                                   f"module {value.__name__!r} is not importable"))
    ref = _import_ref(value, ns)
    if ref is not None:
        return Entry(name, IMPORT, tn, module=ref[0], qualname=ref[1])
    return None


def _dump_one(name: str, value: object
              ) -> tuple[tuple[serializers.Serializer, Dumped] | None, Skip | None]:
    try:
        return serializers.dump(value), None
    except RecursionError:
        return None, Skip("unpicklable", "too deeply nested to serialize")
    except MachineryError as e:
        return None, Skip("ipython-internal", str(e))
    except Exception as e:  # one bad object is skipped, never the whole save
        return None, Skip("unpicklable", describe(e))


@dataclass
class Plan:
    """A namespace classified and grouped, before anything is serialized: ``dump_groups``
    then serializes one group at a time, so a save never holds every stream at once."""

    ns: dict[str, Any]
    entries: dict[str, Entry]
    values: dict[str, object]
    groups: list[tuple[str, ...]]
    reach: dict[str, set[int]]  # name -> ids of the objects with identity it reaches


def plan(ns: dict[str, Any], select: Selector, hidden: frozenset[str] | None = None,
         extra: dict[str, object] | None = None) -> Plan:
    """Classify every name of ``ns`` and group the values (no value is serialized, except
    one that reaches the namespace itself, to tell unpicklable from namespace-holding).
    ``hidden``: the names IPython keeps in ``ns`` for itself, when ``ns`` is a shell's
    namespace. ``extra``: entries saved beside ``ns``'s own (their functions see ``ns``)."""
    entries: dict[str, Entry] = {}
    values: dict[str, object] = {}
    reach: dict[str, set[int]] = {}
    with bound_namespace(ns):
        for name, value in list(ns.items()) + list((extra or {}).items()):
            entry = _classify_one(name, value, ns, select, hidden)
            if entry is None:
                try:
                    reach[name] = identity_ids(value, ns)
                except ReachesNamespace:
                    _, skip = _dump_one(name, value)
                    skip = skip or Skip("namespace", "holds the session namespace itself "
                                        "(like globals())")
                    entry = Entry(name, SKIPPED, type_name(value), skip=skip)
                else:
                    values[name] = value
                    shape, dtype = _array_info(value)
                    entry = Entry(name, VALUE, type_name(value), shape=shape, dtype=dtype)
            entries[name] = entry
    return Plan(ns, entries, values, _group(reach), reach)


def dump_groups(p: Plan) -> Iterator[CapturedGroup]:
    """Serialize the plan's groups one at a time; entries get their group id and size (the
    bytes of their group) as they go, and values that fail become skipped entries."""
    gid = 0
    with bound_namespace(p.ns):
        for names in p.groups:
            batch = _dump_group(names, p)
            while batch:
                group = batch.pop(0)
                for n in group.names:
                    p.entries[n] = replace(p.entries[n], group=gid, size=group.dumped.nbytes)
                gid += 1
                yield group
                del group  # the caller has written it: let its buffers go


class Sink(Protocol):
    """Where ``write_groups`` puts bytes: blobs by index (a FileWriter)."""

    def add_blob(self, data: bytes | bytearray | memoryview) -> int: ...
    def open_stream(self) -> Any: ...
    def mark(self) -> int: ...
    def rollback(self, mark: int) -> None: ...
    def length(self, index: int) -> int: ...


@dataclass
class WrittenGroup:
    names: tuple[str, ...]
    serializer: serializers.Serializer
    meta: dict[str, Any]
    blobs: list[int]


def write_groups(p: Plan, sink: Sink) -> Iterator[WrittenGroup]:
    """Serialize the plan's groups straight into ``sink``, one at a time: pickle streams are
    written as they are produced (no stream is held whole in memory), arrays from their own
    memory. Entries get their group id and size; values that fail become skipped entries."""
    gid = 0
    with bound_namespace(p.ns):
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


def _write_group(names: tuple[str, ...], p: Plan, sink: Sink) -> list[WrittenGroup]:
    """The group, or (when it fails) its members that can be written, together if they are
    several (their identity kept), the others becoming skipped entries."""
    mark = sink.mark()
    try:
        return [_write_one(names, p, sink)]
    except _SinkFailed as e:  # the sink failed (disk full, I/O error): that ends the save
        raise e.__cause__  # type: ignore[misc]  # noqa: B904 (keeps its own __cause__)
    except HibernateError:
        raise
    except RecursionError:
        failure: Skip | None = Skip("unpicklable", "too deeply nested to serialize")
    except MachineryError as e:
        failure = Skip("ipython-internal", str(e))
    except Exception as e:
        failure = Skip("unpicklable", describe(e))
    sink.rollback(mark)
    if len(names) == 1:
        p.entries[names[0]] = Entry(names[0], SKIPPED, p.entries[names[0]].type_name,
                                    skip=failure)
        return []
    fine = []
    for n in names:  # which members can be written alone (tried, then forgotten)
        probe = sink.mark()
        if _write_group((n,), p, sink):
            fine.append(n)
        sink.rollback(probe)
    if 1 < len(fine) < len(names):
        return _write_group(tuple(fine), p, sink)
    return [g for n in fine for g in _write_group((n,), p, sink)]


def capture(ns: dict[str, Any], select: Selector, hidden: frozenset[str] | None = None,
            extra: dict[str, object] | None = None) -> Captured:
    """``plan`` and ``dump_groups`` at once (for callers that need every buffer anyway)."""
    p = plan(ns, select, hidden, extra)
    groups = list(dump_groups(p))
    return Captured(list(p.entries.values()), groups, p.reach)


def _classify_one(name: str, value: object, ns: dict[str, Any], select: Selector,
                  hidden: frozenset[str] | None) -> Entry | None:
    """A skipped, module or import entry; None for a value to serialize."""
    skip = _skip_reason(name, value, ns, select, hidden)
    if skip:
        return Entry(name, SKIPPED, type_name(value), skip=skip)
    try:
        return _classify(name, value, ns)
    except Exception as e:  # e.g. a proxy whose __getattr__ raises outside its context
        return Entry(name, SKIPPED, type_name(value), skip=Skip("unpicklable", describe(e)))


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


def _dump_group(names: tuple[str, ...], p: Plan) -> list[CapturedGroup]:
    """The names serialized as one group; if that fails, each name alone (the values that
    can be saved are, without their shared identity; the others become skipped entries)."""
    if len(names) > 1:
        pickler = serializers.get("pickle")
        try:
            d = pickler.dump(tuple(p.values[n] for n in names))
        except Exception:
            pass
        else:
            d.meta["multi"] = True
            return [CapturedGroup(names, pickler, d)]
    out = []
    for n in names:
        done, skip = _dump_one(n, p.values[n])
        if done is None:
            p.entries[n] = Entry(n, SKIPPED, p.entries[n].type_name, skip=skip)
        else:
            out.append(CapturedGroup((n,), *done))
    if 1 < len(out) < len(names):  # without the members that failed, try them together
        return _dump_group(tuple(g.names[0] for g in out), p)
    return out
