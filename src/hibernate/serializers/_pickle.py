"""The pickle serializer: the C pickler (protocol 5) via cloudpickle, with hibernate's rules.

- Large contiguous buffers (numpy arrays, pandas blocks) go out-of-band as PickleBuffers:
  they are written from the object's own memory and never copied into the stream.
- Functions whose ``__globals__`` is the namespace being saved are saved by value *without*
  their globals: on load they are rebuilt with the target namespace as ``__globals__`` (the
  namespace bound by ``bound_namespace``), so ``global x`` in a restored function updates
  the namespace it was loaded into.
- Closure cells are saved as objects, so closures that shared a cell still share it.
- Classes and functions that are not importable are saved by value by cloudpickle; their
  code objects as bytecode plus source (``_code``), so another Python rebuilds them from
  source instead of running bytecode it was not compiled for.
- Live resources (locks, files open for reading, sqlite3 connections to a file) are saved
  by their own rules (``_resources``); files open for writing are refused (cloudpickle
  would save a copy of their contents).
- The caller may refuse more (``bound_namespace(refuse=...)``: the session refuses IPython
  machinery) and may ask for a salvage (``salvage``): then every object that cannot be
  pickled is written as a ``hibernate.Placeholder`` naming it, and listed.

Non-goals: making unpicklable objects (generators, sockets, locks) picklable.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import io
import pickle
import sys
import types
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import Any

import cloudpickle  # type: ignore[import-untyped]

from .._placeholder import Placeholder
from ._base import Buffer, Dumped, StreamingSerializer
from ._code import code_reduce
from ._resources import is_resource, resource_reduce
from ._stream_check import CheckedUnpickler, Source, one_pickle

__all__ = ["MachineryError", "PickleSerializer", "bound_namespace", "salvage"]


class MachineryError(TypeError):
    """A value holds IPython/Jupyter machinery (a shell, kernel, socket, comm...)."""

PROTOCOL = 5
# Buffers smaller than this stay in the stream: a blob per tiny array costs more than a copy.
OUT_OF_BAND_MIN = 64 << 10

_namespace: ContextVar[dict[str, Any] | None] = ContextVar("hibernate_namespace", default=None)
# Classes restored by value in one load, by cloudpickle's tracker id (see _make_class).
_classes: ContextVar[dict[str, Any] | None] = ContextVar("hibernate_classes", default=None)
# What the caller refuses to save: obj -> a reason (raised as MachineryError), or None.
Refuse = Callable[[object], "str | None"]
_refuse: ContextVar[Refuse | None] = ContextVar("hibernate_refuse", default=None)
# While salvaging: what was replaced by placeholders, as (id, type name, reason).
_salvaged: ContextVar[list[tuple[int, str, str]] | None] = ContextVar("hibernate_salvage",
                                                                       default=None)


@contextlib.contextmanager
def bound_namespace(ns: dict[str, Any], classes: dict[str, Any] | None = None,
                    refuse: Refuse | None = None) -> Iterator[None]:
    """While active, functions whose globals are ``ns`` are saved without their globals, and
    restored functions get ``ns`` as their globals. ``classes`` is one load's registry of
    classes restored by value: within it a class is made once, whatever group names it.
    ``refuse``: objects for which it returns a reason are never saved (MachineryError)."""
    token = _namespace.set(ns)
    token2 = _classes.set(classes)
    token3 = _refuse.set(refuse)
    try:
        yield
    finally:
        _namespace.reset(token)
        _classes.reset(token2)
        _refuse.reset(token3)


@contextlib.contextmanager
def salvage() -> Iterator[list[tuple[int, str, str]]]:
    """While active, objects that cannot be pickled become Placeholders; the list yielded
    collects (id, type name, reason) of each one replaced."""
    found: list[tuple[int, str, str]] = []
    token = _salvaged.set(found)
    try:
        yield found
    finally:
        _salvaged.reset(token)


def _type_name(obj: object) -> str:
    t = type(obj)
    module = getattr(t, "__module__", None)
    name = getattr(t, "__qualname__", None) or getattr(t, "__name__", "?")
    return str(name) if module in ("builtins", None) else f"{module}.{name}"


def _unpicklable(obj: object) -> str | None:
    """Why ``obj`` cannot be reduced (its own ``__reduce_ex__`` fails), or None."""
    if is_resource(obj):
        try:
            resource_reduce(obj)
        except TypeError as e:
            return str(e)
        return None
    if isinstance(obj, (type, types.FunctionType, types.ModuleType)):
        return None
    try:
        obj.__reduce_ex__(PROTOCOL)
    except Exception as e:
        return f"{type(e).__name__}: {e}"
    return None


# ---- reconstructors (importable, so that pickles can name them) -------------------------

def _make_function(code: types.CodeType, name: str,
                   closure: tuple[types.CellType, ...] | None) -> types.FunctionType:
    ns = _namespace.get()
    if ns is None:
        ns = {"__builtins__": __builtins__}
    return types.FunctionType(code, ns, name, None, closure)


def _set_function_state(func: types.FunctionType, state: dict[str, Any]) -> types.FunctionType:
    for attr, value in state.items():
        setattr(func, attr, value)
    return func


def _import_attr(module: str, name: str) -> object:
    return getattr(importlib.import_module(module), name)


def _make_class(make: Any, args: tuple[Any, ...], tracker_at: int) -> type:
    """Make a class saved by value once per load (not once per process, as cloudpickle's
    own tracker does: that would hand a later load the class of an earlier one, or the
    saving process's live class, and rebind its methods to the new namespace)."""
    registry = _classes.get()
    tracker = args[tracker_at]
    if registry is not None and tracker in registry:
        return registry[tracker]  # type: ignore[no-any-return]
    fresh = list(args)
    fresh[tracker_at] = None
    cls: type = make(*fresh)
    if registry is not None and tracker is not None:
        registry[tracker] = cls
    return cls


def _set_class_state(cls: type, state: Any) -> type:
    registry = _classes.get()
    if registry is not None:
        done = registry.setdefault("__populated__", set())
        if id(cls) in done:
            return cls
        done.add(id(cls))
    from cloudpickle.cloudpickle import _class_setstate  # type: ignore[import-untyped]

    _class_setstate(cls, state)
    return cls


def _make_cell() -> types.CellType:
    return types.CellType()


def _set_cell(cell: types.CellType, state: tuple[object]) -> types.CellType:
    cell.cell_contents = state[0]
    return cell


# ---- reducers ---------------------------------------------------------------------------

_LRU = type(functools.lru_cache(None)(lambda: None))
_MISSING = object()  # functools._lru_cache_wrapper

def _function_reduce(func: types.FunctionType) -> tuple[Any, ...]:
    state = {
        "__qualname__": func.__qualname__, "__module__": func.__module__,
        "__doc__": func.__doc__, "__defaults__": func.__defaults__,
        "__kwdefaults__": func.__kwdefaults__, "__annotations__": func.__annotations__,
        "__dict__": func.__dict__,
    }
    return (_make_function, (func.__code__, func.__name__, func.__closure__), state,
            None, None, _set_function_state)


def lru_cached(func: Callable[..., Any], maxsize: int | None, typed: bool) -> Any:
    """``functools.lru_cache(maxsize, typed)(func)``: a cached session function, rebuilt
    around the function saved by value (its cache starts empty)."""
    return functools.lru_cache(maxsize=maxsize, typed=typed)(func)


def _lru_reduce(wrapper: Any) -> tuple[Any, ...]:
    params = wrapper.cache_parameters()
    # attributes set on the wrapper itself (update_wrapper copies the function's again)
    own = {k: v for k, v in vars(wrapper).items()
           if k != "__wrapped__" and vars(wrapper.__wrapped__).get(k, _MISSING) is not v}
    return (lru_cached, (wrapper.__wrapped__, params["maxsize"], params["typed"]),
            own or None)


# Weak containers as new ones holding the same entries: an entry stays while its referent
# is held elsewhere in what is loaded (with identity kept), as it did in the session.
_WEAK: dict[type, Callable[[Any], tuple[Any, ...]]] = {
    weakref.WeakKeyDictionary: lambda d: (weakref.WeakKeyDictionary, (), None, None,
                                          iter(list(d.items()))),
    weakref.WeakValueDictionary: lambda d: (weakref.WeakValueDictionary, (), None, None,
                                            iter(list(d.items()))),
    weakref.WeakSet: lambda s: (weakref.WeakSet, (list(s),)),
}


def _cell_reduce(cell: types.CellType) -> tuple[Any, ...]:
    try:
        contents = cell.cell_contents
    except ValueError:  # an empty cell
        return (_make_cell, ())
    return (_make_cell, (), (contents,), None, None, _set_cell)


# Singletons that must stay the very objects of their module (dataclasses compares to them
# with `is`), saved by reference.
_SENTINELS: dict[int, tuple[str, str]] = {
    id(getattr(dataclasses, name)): ("dataclasses", name)
    for name in ("MISSING", "KW_ONLY", "_HAS_DEFAULT_FACTORY") if hasattr(dataclasses, name)
}


_TRACKER_ARG = {"_make_skeleton_class": 4, "_make_skeleton_enum": 5}


def _per_load_class(rv: Any) -> Any:
    """Route a class-by-value reduction through _make_class / _set_class_state."""
    if not isinstance(rv, tuple) or len(rv) != 6:
        return rv
    at = _TRACKER_ARG.get(getattr(rv[0], "__name__", ""))
    if at is None or getattr(rv[5], "__name__", "") != "_class_setstate":
        return rv
    return (_make_class, (rv[0], tuple(rv[1]), at), rv[2], rv[3], rv[4], _set_class_state)


def _with_slots(cls: type, rv: Any) -> Any:
    """cloudpickle rebuilds a class saved by value as an empty skeleton and sets its
    attributes afterwards, too late for ``__slots__``: pass them at creation instead."""
    slots = cls.__dict__.get("__slots__")
    if (slots is None or not isinstance(rv, tuple) or len(rv) < 2
            or getattr(rv[0], "__name__", "") != "_make_skeleton_class"):
        return rv
    args = list(rv[1])
    args[3] = {**args[3], "__slots__": slots}
    return (rv[0], tuple(args), *rv[2:])


def _unseen(obj: object) -> None: ...


# type -> its portable reducer (or None), filled as the pickler meets types
_PORTABLE: dict[type, Callable[[Any], Any] | None] = {}


def _portable_form(t: type) -> Callable[[Any], Any] | None:
    """The reducer of a version-independent form for values of type ``t``: numpy arrays
    and random generators, pandas frames, series and indexes, Arrow tables and arrays (see
    ``_numpy``, ``_pandas``, ``_arrow``).
    Asked once per type; imports nothing the session has not imported."""
    module = getattr(t, "__module__", "") or ""
    if module.startswith("numpy") and "numpy" in sys.modules:
        from ._numpy import portable_random_reduce, portable_reduce

        if t is sys.modules["numpy"].ndarray:
            return portable_reduce
        return portable_random_reduce if module.startswith("numpy.random") else None
    if module.startswith("pandas") and "pandas" in sys.modules:
        from ._pandas import portable_reduce as pandas_reduce

        return pandas_reduce
    if module.startswith("pyarrow") and "pyarrow" in sys.modules:
        from ._arrow import portable_arrow_reduce

        return portable_arrow_reduce
    return None


class _Pickler(cloudpickle.Pickler):  # type: ignore[misc]
    def __init__(self, file: io.BytesIO, ns: dict[str, Any] | None,
                 buffer_callback: Any) -> None:
        super().__init__(file, protocol=PROTOCOL, buffer_callback=buffer_callback)
        self._ns = ns

    def reducer_override(self, obj: object) -> Any:
        t = type(obj)
        if t is types.FunctionType and obj.__globals__ is self._ns:  # type: ignore[attr-defined]
            return _function_reduce(obj)  # type: ignore[arg-type]
        if t is types.CellType:
            return _cell_reduce(obj)  # type: ignore[arg-type]
        if t in _WEAK:  # their own _remove callbacks cannot be pickled: the entries can
            return _WEAK[t](obj)
        if t is _LRU and getattr(getattr(obj, "__wrapped__", None), "__globals__",
                                 None) is self._ns:  # pickled by name, which the new
            return _lru_reduce(obj)                  # process's __main__ does not have
        if t is types.CodeType:  # bytecode for this Python, source for the others
            return code_reduce(obj)  # type: ignore[arg-type]
        form = _PORTABLE.get(t, _unseen)
        if form is _unseen:
            form = _PORTABLE[t] = _portable_form(t)
        if form is not None:  # a form of no numpy or pandas version's own
            portable = form(obj)
            if portable is not None:
                return portable
        refuse = _refuse.get()
        why = refuse(obj) if refuse is not None and not isinstance(obj, type) else None
        if why:
            raise MachineryError(why)
        salvaged = _salvaged.get()
        if salvaged is not None and t is not Placeholder:
            lost = _unpicklable(obj)
            if lost is not None:
                salvaged.append((id(obj), _type_name(obj), lost))
                return (Placeholder, (_type_name(obj), lost))
        if is_resource(obj):  # by its own rules (or a TypeError saying why it cannot be)
            return resource_reduce(obj)
        if id(obj) in _SENTINELS:
            return (_import_attr, _SENTINELS[id(obj)])
        rv = super().reducer_override(obj)
        return _per_load_class(_with_slots(obj, rv)) if isinstance(obj, type) else rv


class PickleSerializer(StreamingSerializer):
    name = "pickle"
    version = 1

    def config(self) -> dict[str, Any]:
        return {"protocol": PROTOCOL, "engine": "cloudpickle"}

    def handles(self, obj: object) -> bool:
        return True

    def dump(self, obj: object) -> Dumped:
        out_of_band: list[pickle.PickleBuffer] = []

        def keep(buf: pickle.PickleBuffer) -> bool:
            try:
                raw = buf.raw()
            except BufferError:  # not contiguous: let the pickler copy it in-band
                return True
            if raw.nbytes < OUT_OF_BAND_MIN:
                return True
            out_of_band.append(buf)
            return False

        stream = io.BytesIO()
        ns = _namespace.get()
        pickler = _Pickler(stream, ns, keep)
        pickler.dump(obj)
        buffers: list[Buffer] = [stream.getbuffer()]
        buffers.extend(b.raw() for b in out_of_band)
        return Dumped({"buffers": len(out_of_band)}, buffers)

    def dump_to(self, obj: object, stream: Any, add_buffer: Any) -> tuple[dict[str, Any],
                                                                          list[int]]:
        """Pickle ``obj`` straight into ``stream`` (a file-like ``write``), handing each large
        out-of-band buffer to ``add_buffer(buffer) -> blob index`` as the pickler meets it
        (the order the unpickler will ask for them). Returns (meta, buffer blob indices):
        the same meta and buffers ``dump`` gives, with no stream held in memory."""
        indices: list[int] = []

        def keep(buf: pickle.PickleBuffer) -> bool:
            try:
                raw = buf.raw()
            except BufferError:
                return True
            if raw.nbytes < OUT_OF_BAND_MIN:
                return True
            indices.append(add_buffer(raw))
            return False

        _Pickler(stream, _namespace.get(), keep).dump(obj)
        return {"buffers": len(indices)}, indices

    def raw_buffers(self, meta: Mapping[str, Any], count: int) -> set[int]:
        return set(range(1, count))  # the out-of-band buffers; never the stream (blob 0)

    def load(self, meta: dict[str, Any], buffers: Sequence[Buffer]) -> object:
        """Unpickle a stream that must be exactly one pickle, ending at its STOP.

        ``pickle.loads`` stops at the first STOP and ignores what follows, so a stream with
        bytes after it would load while ``hibernate trust`` (which refuses such a stream)
        cannot say what it holds. ``one_pickle`` walks the opcodes (reading only their
        argument lengths) and refuses an unknown opcode, an argument past the end, a
        missing STOP and any byte after it: as long as ``pickle.loads`` itself for a
        stream of many small objects. So it runs only when needed, before anything can
        run: no code runs from a pickle without a global, so the walk runs at the first
        ``find_class``, before the first global is handed out. A stream that names no
        global (lists, dicts, tuples, strings, numbers: the bulk of small objects) runs
        nothing; after it is read, the check is that the unpickler read it to its end and
        that the last block it read (a frame, or the STOP byte alone) ends at its STOP."""
        if len(buffers) != 1 + meta.get("buffers", 0):
            raise ValueError("the number of out-of-band buffers does not match the stream")
        view = memoryview(buffers[0]).cast("B")
        source = Source(view)
        unpickler = CheckedUnpickler(source, view, buffers[1:])
        value = unpickler.load()
        if not unpickler.checked:
            if source.pos != len(view):
                raise pickle.UnpicklingError(
                    f"{len(view) - source.pos} byte(s) after the pickle's STOP: refused, a "
                    "stream must be exactly one pickle")
            one_pickle(view, source.last)  # the block that held the STOP
        return value
