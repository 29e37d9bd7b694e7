"""Serializers: a plain registry from name to class, imported lazily.

The pickle serializer is the fallback for every value; native serializers (numpy, pandas,
arrow) will be consulted first as they arrive, each importing its library only when used.
"""

from __future__ import annotations

import importlib
import sys

from ._base import Dumped, Serializer

__all__ = ["CODE_FREE", "REGISTRY", "Dumped", "Serializer", "get", "lookup"]

# name -> "module:Class", imported on first use.
REGISTRY: dict[str, str] = {
    "numpy": "hibernate.serializers._numpy:NumpySerializer",
    "pickle": "hibernate.serializers._pickle:PickleSerializer",
}
# Order in which serializers are asked whether they handle an object; pickle is last.
PREFERENCE: list[str] = ["numpy", "pickle"]
# A serializer is only asked about objects when the library it serves is already imported
# (an object of that library cannot exist otherwise), so hibernate never imports it itself.
REQUIRES: dict[str, str] = {"numpy": "numpy"}
# Serializers whose load runs no code from the file (safe for untrusted files).
CODE_FREE: frozenset[str] = frozenset({"numpy"})

_instances: dict[str, Serializer] = {}


def get(name: str) -> Serializer:
    """The serializer registered under ``name`` (KeyError if there is none)."""
    if name not in _instances:
        module, _, cls = REGISTRY[name].partition(":")
        _instances[name] = getattr(importlib.import_module(module), cls)()
    return _instances[name]


def lookup(obj: object) -> Serializer:
    for name in PREFERENCE:
        if name in REQUIRES and REQUIRES[name] not in sys.modules:
            continue
        s = get(name)
        if s.handles(obj):
            return s
    raise LookupError(f"no serializer handles {type(obj).__name__}")
