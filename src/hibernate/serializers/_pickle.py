"""The pickle serializer: the C pickler (protocol 5) via cloudpickle, with hibernate's rules.

- Large contiguous buffers (numpy arrays, pandas blocks) go out-of-band as PickleBuffers:
  they are written from the object's own memory and never copied into the stream.
- Functions whose ``__globals__`` is the namespace being saved are saved by value *without*
  their globals: on load they are rebuilt with the target namespace as ``__globals__`` (the
  namespace bound by ``bound_namespace``), so ``global x`` in a restored function updates
  the namespace it was loaded into.
- Closure cells are saved as objects, so closures that shared a cell still share it.
- Classes and functions that are not importable are saved by value by cloudpickle.
- Open files are refused (cloudpickle would save a copy of their contents).

Non-goals: making unpicklable objects (generators, sockets, locks) picklable.
"""

from __future__ import annotations

import contextlib
import io
import pickle
import sys
import types
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from typing import Any

import cloudpickle

from ._base import Buffer, Dumped, Serializer

__all__ = ["PickleSerializer", "bound_namespace"]

PROTOCOL = 5
# Buffers smaller than this stay in the stream: a blob per tiny array costs more than a copy.
OUT_OF_BAND_MIN = 64 << 10

_namespace: ContextVar[dict[str, Any] | None] = ContextVar("hibernate_namespace", default=None)
# id(class) -> the objects reached by pickling that class, for one save (see _class_refs).
_class_memo: ContextVar[dict[int, dict[int, object]] | None] = ContextVar(
    "hibernate_class_memo", default=None)


@contextlib.contextmanager
def bound_namespace(ns: dict[str, Any]) -> Iterator[None]:
    """While active, functions whose globals are ``ns`` are saved without their globals, and
    restored functions get ``ns`` as their globals."""
    token = _namespace.set(ns)
    token2 = _class_memo.set({})
    try:
        yield
    finally:
        _namespace.reset(token)
        _class_memo.reset(token2)


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


def _make_cell() -> types.CellType:
    return types.CellType()


def _set_cell(cell: types.CellType, state: tuple[object]) -> types.CellType:
    cell.cell_contents = state[0]
    return cell


# ---- reducers ---------------------------------------------------------------------------

def _function_reduce(func: types.FunctionType) -> tuple[Any, ...]:
    state = {
        "__qualname__": func.__qualname__, "__module__": func.__module__,
        "__doc__": func.__doc__, "__defaults__": func.__defaults__,
        "__kwdefaults__": func.__kwdefaults__, "__annotations__": func.__annotations__,
        "__dict__": func.__dict__,
    }
    return (_make_function, (func.__code__, func.__name__, func.__closure__), state,
            None, None, _set_function_state)


def _cell_reduce(cell: types.CellType) -> tuple[Any, ...]:
    try:
        contents = cell.cell_contents
    except ValueError:  # an empty cell
        return (_make_cell, ())
    return (_make_cell, (), (contents,), None, None, _set_cell)


_FILE_TYPES = (io.FileIO, io.BufferedReader, io.BufferedWriter, io.BufferedRandom,
               io.TextIOWrapper)


class _Pickler(cloudpickle.Pickler):
    def __init__(self, file: io.BytesIO, ns: dict[str, Any] | None,
                 buffer_callback: Any) -> None:
        super().__init__(file, protocol=PROTOCOL, buffer_callback=buffer_callback)
        self._ns = ns
        self.classes: list[type] = []

    def reducer_override(self, obj: object) -> Any:
        t = type(obj)
        if t is types.FunctionType and obj.__globals__ is self._ns:  # type: ignore[attr-defined]
            return _function_reduce(obj)  # type: ignore[arg-type]
        if t is types.CellType:
            return _cell_reduce(obj)  # type: ignore[arg-type]
        if isinstance(obj, _FILE_TYPES):
            raise TypeError(f"cannot save an open file ({getattr(obj, 'name', '?')!r}): "
                            "reopen it after loading")
        if isinstance(obj, type):
            self.classes.append(obj)
        return super().reducer_override(obj)


# ---- which memoized objects carry identity worth keeping across variables ---------------

_NO_IDENTITY: frozenset[type] = frozenset({
    type(None), bool, int, float, complex, str, bytes, tuple, frozenset, range, slice,
    types.ModuleType, types.BuiltinFunctionType, types.CodeType, types.MethodType,
    pickle.PickleBuffer, type(Ellipsis), type(NotImplemented),
})


def _lazy_dtype_types() -> tuple[type, ...]:
    found: list[type] = []
    np = sys.modules.get("numpy")
    if np is not None:
        found.append(np.dtype)
    pd = sys.modules.get("pandas")
    if pd is not None:
        found.append(pd.api.extensions.ExtensionDtype)
    return tuple(found)


def _function_has_identity(func: types.FunctionType, ns: dict[str, Any] | None) -> bool:
    """Functions saved by value, except methods: a class is restored once per process
    (cloudpickle tracks it), so its methods must not tie together every variable that holds
    an instance of it."""
    if func.__globals__ is not ns:
        return False
    parts = func.__qualname__.rsplit(".", 2)
    return len(parts) == 1 or parts[-2] == "<locals>"


def _holds_class(cell: types.CellType) -> bool:
    try:
        return isinstance(cell.cell_contents, type)
    except ValueError:
        return False


def _identity_refs(memo: dict[int, tuple[int, object]], ns: dict[str, Any] | None
                   ) -> dict[int, object]:
    """The memoized objects whose identity matters: mutable containers, instances, functions
    saved by value, cells. Immutable atoms, classes, modules and dtypes are left out."""
    skip_types = _lazy_dtype_types()
    refs = {}
    for key, (_, obj) in memo.items():
        t = type(obj)
        if t in _NO_IDENTITY or isinstance(obj, type) or (skip_types and isinstance(
                obj, skip_types)):
            continue
        if t is types.FunctionType and not _function_has_identity(obj, ns):  # type: ignore[arg-type]
            continue
        if t is types.CellType and _holds_class(obj):  # type: ignore[arg-type]
            continue  # the __class__ cell that every method of a class shares
        refs[key] = obj
    return refs


def _class_refs(cls: type, ns: dict[str, Any] | None) -> dict[int, object]:
    """Objects reached by pickling ``cls`` itself. A class is restored once per process
    (cloudpickle tracks classes saved by value), so what hangs off it (methods, class
    attributes) must not tie together every variable that holds an instance of it."""
    cache = _class_memo.get()
    if cache is None:
        cache = {}
    if id(cls) not in cache:
        cache[id(cls)] = {}  # guards against recursion through the class itself
        pickler = _Pickler(io.BytesIO(), ns, lambda buf: True)
        try:
            pickler.dump(cls)
        except Exception:
            return {}
        cache[id(cls)] = {k: obj for k, (_, obj) in pickler.memo.copy().items()}
    return cache[id(cls)]


class PickleSerializer(Serializer):
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
        refs = _identity_refs(pickler.memo.copy(), ns)
        for cls in pickler.classes:
            for key in _class_refs(cls, ns):
                refs.pop(key, None)
            for attr in vars(cls).values():  # incl. ones set lazily, like __slotnames__
                refs.pop(id(attr), None)
        buffers: list[Buffer] = [stream.getbuffer()]
        buffers.extend(b.raw() for b in out_of_band)
        return Dumped({"buffers": len(out_of_band)}, buffers, refs)

    def load(self, meta: dict[str, Any], buffers: Sequence[Buffer]) -> object:
        if len(buffers) != 1 + meta.get("buffers", 0):
            raise ValueError("the number of out-of-band buffers does not match the stream")
        return pickle.loads(buffers[0], buffers=buffers[1:])
