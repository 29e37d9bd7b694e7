"""Which objects with identity a value reaches, so that variables sharing one are grouped.

The walk follows the garbage collector's view of references (``gc.get_referents``), which
runs in C, and stops where identity is not the session's to keep:

- atoms (None, numbers, str, bytes) are neither followed nor counted;
- tuples and frozensets are followed but not counted (restoring two equal tuples where
  there was one is harmless);
- classes, modules, code, frames and tracebacks are not followed (pickle saves none of a
  frame); classes saved by value are restored once per load, so instances in different
  groups still share their class;
- functions are followed through their closure cells, defaults and ``__dict__`` only, never
  their ``__globals__`` (a closure from a library still ties the list it appends to); only
  functions saved by value (``__globals__`` is the namespace) and not methods are counted;
- reaching the namespace itself raises ReachesNamespace (such a value is skipped).

A numpy array's ``base`` is followed, so a view is grouped with the array it views.

Limits: objects that hide their references from the collector (numpy object arrays, some C
extension types) are not looked into, so sharing through them is not detected: the values
still load, as separate copies.
"""

from __future__ import annotations

import gc
import sys
import types
import weakref
from typing import Any

from ..serializers._resources import is_widget, widget_state

__all__ = ["ReachesNamespace", "identity_ids"]


class ReachesNamespace(Exception):
    """The value holds the namespace itself (saving it would copy the whole session)."""

_ATOMS = frozenset({type(None), bool, int, float, complex, str, bytes, type(Ellipsis),
                    type(NotImplemented), range, slice})
_UNCOUNTED = frozenset({tuple, frozenset})


def _opaque_types() -> tuple[type, ...]:
    """Types not followed: classes, modules, code, and numpy/pandas dtypes (immutable
    singletons that would otherwise tie every array to every other)."""
    found: list[type] = [type, types.ModuleType, types.CodeType, types.FrameType,
                         types.TracebackType]
    np = sys.modules.get("numpy")
    if np is not None:
        found.append(np.dtype)
    pd = sys.modules.get("pandas")
    if pd is not None and hasattr(pd, "api"):
        found.append(pd.api.extensions.ExtensionDtype)
    return tuple(found)


def _function_parts(func: types.FunctionType) -> list[object]:
    parts: list[object] = list(func.__closure__ or ())
    parts += [func.__defaults__, func.__kwdefaults__, func.__dict__]
    return [p for p in parts if p is not None]


def _is_method(func: types.FunctionType) -> bool:
    parts = func.__qualname__.rsplit(".", 2)
    return len(parts) > 1 and parts[-2] != "<locals>"


def _counted(obj: object, t: type, ns: dict[str, Any]) -> bool:
    if t in _UNCOUNTED:
        return False
    if isinstance(obj, types.FunctionType):
        return obj.__globals__ is ns and not _is_method(obj)
    if t is types.CellType:
        try:
            return not isinstance(obj.cell_contents, type)  # type: ignore[attr-defined]
        except ValueError:
            return True
    return True


def _without_atoms(objs: list[object]) -> list[object]:
    kinds = set(map(type, objs))  # C speed; the per-object filter only runs when mixed
    if kinds <= _ATOMS:
        return []
    if kinds.isdisjoint(_ATOMS):
        return objs
    return [o for o in objs if type(o) not in _ATOMS]


def identity_ids(root: object, ns: dict[str, Any],
                 functions: list[types.FunctionType] | None = None) -> set[int]:
    """Ids of the objects with identity that ``root`` reaches (``root`` included).
    Raises ReachesNamespace if it reaches ``ns``. ``functions`` collects the namespace's
    own functions met on the way."""
    opaque = _opaque_types()
    seen: set[int] = set()
    counted: set[int] = set()
    frontier = _without_atoms([root])
    while frontier:
        if set(map(type, frontier)) <= _UNCOUNTED:  # e.g. a list of a million tuples
            walk = frontier
            nxt: list[object] = []
        else:
            walk, nxt = _step(frontier, ns, opaque, seen, counted, functions)
        if walk:
            nxt.extend(gc.get_referents(*walk))
        frontier = _without_atoms(nxt)
    return counted


_PLAIN = frozenset({dict, list, set, bytearray})


_PROXIES = (weakref.ProxyType, weakref.CallableProxyType)
_WEAK_CONTAINERS = (weakref.WeakKeyDictionary, weakref.WeakValueDictionary, weakref.WeakSet)


def _step(frontier: list[object], ns: dict[str, Any], opaque: tuple[type, ...],
          seen: set[int], counted: set[int],
          functions: list[types.FunctionType] | None = None
          ) -> tuple[list[object], list[object]]:
    """Visit one level: count what has identity; return (objects to ask the collector
    about, objects to visit next level directly)."""
    walk: list[object] = []
    nxt: list[object] = []
    for obj in frontier:
        if obj is ns:
            raise ReachesNamespace
        i = id(obj)
        if i in seen:
            continue
        seen.add(i)
        t = type(obj)
        if t in _PLAIN:
            counted.add(i)
            walk.append(obj)
            continue
        if t in _PROXIES:  # a weak proxy forwards everything (isinstance too) to its
            continue       # referent, and raises ReferenceError once that is gone
        if isinstance(obj, opaque):
            continue
        if _counted(obj, t, ns):
            counted.add(i)
        if is_widget(obj):  # a widget is its state, never its comm (which reaches the kernel)
            counted.add(i)
            nxt.extend(widget_state(obj).values())
        elif t is types.FunctionType:
            nxt.extend(_function_parts(obj))  # type: ignore[arg-type]
            if functions is not None and obj.__globals__ is ns:  # type: ignore[attr-defined]
                functions.append(obj)  # type: ignore[arg-type]
        elif t is types.MethodType:
            nxt.extend((obj.__self__, obj.__func__))  # type: ignore[attr-defined]
        elif t is types.BuiltinFunctionType:
            nxt.append(obj.__self__)  # type: ignore[attr-defined]
        elif t in _WEAK_CONTAINERS:  # what it holds weakly is saved with it (the collector
            walk.append(obj)         # does not see through a weak reference)
            held: Any = obj
            nxt.extend(held.keys() if t is weakref.WeakKeyDictionary else
                       held.values() if t is weakref.WeakValueDictionary else held)
        else:
            walk.append(obj)
            base = getattr(obj, "base", None) if t.__module__ == "numpy" else None
            if base is not None:  # a numpy view shares its base's memory
                nxt.append(base)
    return walk, nxt
