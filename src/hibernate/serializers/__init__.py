"""Serializers: a plain registry from name to class, imported lazily.

The pickle serializer is the fallback for every value; native serializers (numpy, pandas,
arrow) are consulted first, each importing its library only when used.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator

from ._base import Decline, Dumped, Serializer, StreamingSerializer

__all__ = ["CODE_FREE", "REGISTRY", "Decline", "Dumped", "Serializer",
           "StreamingSerializer", "dump", "get", "lookup"]

# name -> "module:Class", imported on first use.
REGISTRY: dict[str, str] = {
    "numpy": "hibernate.serializers._numpy:NumpySerializer",
    "pandas": "hibernate.serializers._pandas:PandasSerializer",
    "arrow": "hibernate.serializers._arrow:ArrowSerializer",
    "polars": "hibernate.serializers._polars:PolarsSerializer",
    "pickle": "hibernate.serializers._pickle:PickleSerializer",
}
# Order in which serializers are asked whether they handle an object; pickle is last.
PREFERENCE: list[str] = ["numpy", "pandas", "arrow", "polars", "pickle"]
# A serializer is only asked about objects when the library it serves is already imported
# (an object of that library cannot exist otherwise), so hibernate never imports it itself.
REQUIRES: dict[str, str] = {"numpy": "numpy", "pandas": "pandas", "arrow": "pyarrow",
                           "polars": "polars"}
# Serializers whose load runs no code from the file (safe for untrusted files).
CODE_FREE: frozenset[str] = frozenset({"numpy", "pandas", "arrow", "polars"})

_instances: dict[str, Serializer] = {}


def get(name: str) -> Serializer:
    """The serializer registered under ``name`` (KeyError if there is none)."""
    if name not in _instances:
        module, _, cls = REGISTRY[name].partition(":")
        _instances[name] = getattr(importlib.import_module(module), cls)()
    return _instances[name]


def candidates(obj: object) -> Iterator[Serializer]:
    """The serializers that handle ``obj``'s type, most specific first (pickle last)."""
    for name in PREFERENCE:
        if name in REQUIRES and REQUIRES[name] not in sys.modules:
            continue
        s = get(name)
        if s.handles(obj):
            yield s


def lookup(obj: object) -> Serializer:
    for s in candidates(obj):
        return s
    raise LookupError(f"no serializer handles {type(obj).__name__}")


def dump(obj: object) -> tuple[Serializer, Dumped]:
    """Serialize ``obj`` with the first serializer that does not decline it."""
    for s in candidates(obj):
        try:
            return s, s.dump(obj)
        except Decline:
            continue
    raise LookupError(f"no serializer handles {type(obj).__name__}")
