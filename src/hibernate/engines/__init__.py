"""Values of distributed engines (Dask, Spark), saved and restored by the engine itself.

A session that holds a persisted Dask collection or a Spark DataFrame holds a handle, not
data: pickling it saves futures into a cluster that will not exist tomorrow (or fails).
Here the engine's own workers write the value's partitions in parallel (Parquet for data
frames, ``.npy`` blocks for arrays) under a fresh prefix that belongs to the session (see
``Location``), each worker returning its partition's path, size, rows and SHA-256; the
manifest records all of it, so the signature covers engine data and ``inspect`` shows it
with no engine started. On load the value comes back lazily on the engine the user has
now, every partition checked against its digest by the worker that reads it.

An engine adapter is small: ``handles``, ``choose`` (the policy: write the data, save the
graph, or skip, with the reason), ``write`` and ``restore``. ``ENGINES`` is the registry;
adapters import their engine only when a value of theirs is met.

Non-goals: moving data through the saving process, engines' own checkpoint formats.
"""

from __future__ import annotations

import sys
from typing import Any, Protocol

from ..errors import EngineError
from ._location import Location, check_relative, fresh_prefix

__all__ = ["ENGINES", "MODES", "Engine", "EngineError", "Location", "check_relative",
           "engine_for", "fresh_prefix", "record_of"]

MODES = ("auto", "write", "graph", "skip")


class Engine(Protocol):
    name: str

    def handles(self, value: object) -> bool: ...

    def choose(self, value: object, mode: str) -> tuple[str, str]:
        """("write" | "graph" | "skip", why) for ``value`` under ``mode``."""

    def write(self, value: object, location: Location, prefix: str) -> dict[str, Any]:
        """Have the engine write ``value`` under ``prefix``; the manifest's record of it."""

    def restore(self, record: dict[str, Any], location: Location) -> object:
        """The value, lazily, on the engine the user has now (EngineError if none)."""


def _engines() -> list[Engine]:
    found: list[Engine] = []
    if "dask" in sys.modules:
        from ._dask import DaskEngine

        found.append(DaskEngine())
    if "pyspark" in sys.modules:
        from ._spark import SparkEngine

        found.append(SparkEngine())
    return found


def engine_for(value: object) -> Engine | None:
    """The engine adapter for ``value`` (only engines the session imported are asked)."""
    module = type(value).__module__ or ""
    if not module.startswith(("dask", "pyspark")):
        return None
    for engine in _engines():
        if engine.handles(value):
            return engine
    return None


ENGINES = ("dask", "spark")
DIGESTS = ("blake3", "sha256")  # a partition's digest: Dask's workers use BLAKE3, Spark SHA-256


def record_of(extra: dict[str, Any]) -> dict[str, Any]:
    """An entry's engine record, checked for the fields every engine needs."""
    record = extra.get("engine")
    if not isinstance(record, dict) or record.get("engine") not in ENGINES:
        raise EngineError("the entry's engine record is missing or names an unknown engine")
    check_relative(record.get("prefix"))
    parts = record.get("partitions")
    if not isinstance(parts, list):
        raise EngineError("the entry's engine record has no partition list")
    for part in parts:
        if not isinstance(part, dict):
            raise EngineError("a partition record is not a mapping")
        check_relative(part.get("path"))
        if type(part.get("size")) is not int or not any(
                isinstance(part.get(k), str) for k in DIGESTS):
            raise EngineError("a partition record has no size or digest")
    return record


def restore(record: dict[str, Any], location: Location) -> object:
    name = record["engine"]
    if name == "dask":
        from ._dask import DaskEngine

        return DaskEngine().restore(record, location)
    from ._spark import SparkEngine

    return SparkEngine().restore(record, location)
