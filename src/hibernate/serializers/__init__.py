"""Serializers: a plain registry from name to class, imported lazily.

The pickle serializer is the fallback for every value; native serializers (numpy, pandas,
arrow) will be consulted first as they arrive, each importing its library only when used.
"""

from __future__ import annotations

import importlib

from ._base import Dumped, Serializer

__all__ = ["REGISTRY", "Dumped", "Serializer", "get", "lookup"]

# name -> "module:Class", imported on first use.
REGISTRY: dict[str, str] = {
    "pickle": "hibernate.serializers._pickle:PickleSerializer",
}
# Order in which serializers are asked whether they handle an object; pickle is last.
PREFERENCE: list[str] = ["pickle"]

_instances: dict[str, Serializer] = {}


def get(name: str) -> Serializer:
    """The serializer registered under ``name`` (KeyError if there is none)."""
    if name not in _instances:
        module, _, cls = REGISTRY[name].partition(":")
        _instances[name] = getattr(importlib.import_module(module), cls)()
    return _instances[name]


def lookup(obj: object) -> Serializer:
    for name in PREFERENCE:
        s = get(name)
        if s.handles(obj):
            return s
    raise LookupError(f"no serializer handles {type(obj).__name__}")
