"""Spark DataFrames: written as Parquet by Spark's own writer, checked and read by its
executors.

A Spark DataFrame is a plan over a live session (it has no graph that outlives it), so it
is always written as data: ``df.write.parquet`` writes its partitions in parallel under
the save's prefix, then one job on the executors reads the ``part-*`` files back as
``binaryFile`` rows and returns each file's size and SHA-256 (only those small columns
reach the driver), and one more counts each file's rows from the Parquet footers.
Restoring needs the user's active ``SparkSession``: the executors hash every recorded file
again (a missing, extra or changed file fails the entry), and the value comes back as a
lazy ``spark.read.schema(...).parquet(...)`` of exactly those files. Parquet runs no code
from the file, so it loads with ``data_only``; a schema's user-defined type is accepted
only from a module already imported (parsing it would import the module the file names).

Limits: the data lives on a local path (a plain path or ``file://`` URL), which every
executor must reach at the same place: no ``s3://`` and the like (these machines have no
Hadoop connectors such as hadoop-aws), and ``storage_options`` do not apply. The files are
checked when the value is loaded, not at each later read of the lazy DataFrame. Hashing
reads a whole file on one executor (``binaryFile``), so a file must be under 2 GiB.

Non-goals: pandas-on-Spark frames, streaming DataFrames (skipped), Spark's own
checkpoints and tables.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from typing import Any

from ..errors import EngineError
from ._location import Location, check_relative

__all__ = ["SparkEngine"]

_START = ("start one first, e.g. `from pyspark.sql import SparkSession; "
          "SparkSession.builder.master(\"local[2]\").getOrCreate()`, then load it again")


def _modules() -> tuple[Any, Any, Any]:
    """pyspark.sql, its functions and its types (typed loosely, as the other adapters)."""
    import pyspark.sql
    import pyspark.sql.functions
    import pyspark.sql.types

    return pyspark.sql, pyspark.sql.functions, pyspark.sql.types


def _spark_url(location: Location, relative: str) -> str:
    """The ``file://`` URL Spark is given for a checked relative path (never a plain path,
    which Spark would resolve on the cluster's default filesystem)."""
    url = location.url(relative)
    if url.startswith("file://"):
        return url
    if "://" not in url:
        return "file://" + os.path.abspath(url)
    scheme = url.split("://", 1)[0]
    raise EngineError(f"Spark engine data needs a local or Hadoop-reachable path (a plain "
                      f"path or file:// URL every executor reaches), not {scheme}://: this "
                      "Spark has no Hadoop connector for it (such as hadoop-aws). Save the "
                      "session to a local path, or pass engines='skip'")


def _literal(url: str) -> str:
    """``url`` for Spark's readers, which take a path as a glob pattern: its pattern
    characters escaped."""
    return re.sub(r"([\\{}\[\]*?])", r"\\\1", url)


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"


# ---- jobs that run on the executors ---------------------------------------------------------

def _files(spark: Any, url: str) -> dict[str, tuple[int, str]]:
    """{file name: (size, SHA-256)} of the ``part-*`` files under ``url`` (Spark's listing
    already leaves out ``_SUCCESS`` and ``.crc`` files), hashed by the executors."""
    _, F, _ = _modules()
    files = spark.read.format("binaryFile").option("pathGlobFilter", "part-*")
    rows = (files.load(_literal(url))
            .select("path", "length", F.sha2(F.col("content"), 256).alias("sha256"))
            .collect())
    return {str(r["path"]).rsplit("/", 1)[-1]: (int(r["length"]), str(r["sha256"]))
            for r in rows}


def _rows(spark: Any, url: str) -> dict[str, int]:
    """{file name: rows} from the Parquet footers: the files are read with a schema of one
    column they lack (so no data is read, and no column of theirs hides ``_metadata``)."""
    _, F, _ = _modules()
    counts = (spark.read.schema("hibernate_absent boolean").parquet(_literal(url))
              .select(F.col("_metadata.file_name").alias("name")).groupBy("name").count()
              .collect())
    return {str(r["name"]): int(r["count"]) for r in counts}


# ---- the recorded schema ----------------------------------------------------------------------

def _udts(tree: object) -> Iterator[dict[str, Any]]:
    if isinstance(tree, dict):
        if tree.get("type") == "udt":
            yield tree
        for v in tree.values():
            yield from _udts(v)
    elif isinstance(tree, list):
        for v in tree:
            yield from _udts(v)


def _check_udt(types: Any, udt: dict[str, Any]) -> None:
    """Parsing a user-defined type imports the module the file names and calls its class:
    accepted only for a UserDefinedType in the namespace of a module already imported."""
    name = str(udt.get("pyClass", ""))
    module_name, _, class_name = name.rpartition(".")
    module = sys.modules.get(module_name)
    cls = vars(module).get(class_name) if module is not None else None
    if not (isinstance(cls, type) and issubclass(cls, types.UserDefinedType)):
        raise EngineError(f"its schema names the user-defined type {name!r}, whose module "
                          "is not imported: import it first, then load again")


def _schema(text: object) -> Any:
    """The record's schema as a StructType."""
    _, _, types = _modules()
    try:
        tree = json.loads(text)  # type: ignore[arg-type]
        for udt in _udts(tree):
            _check_udt(types, udt)
    except (TypeError, ValueError, RecursionError):
        raise EngineError("the Spark record's schema is not a JSON schema") from None
    try:
        return types.StructType.fromJson(tree)
    except EngineError:
        raise
    except Exception as e:
        raise EngineError(f"the Spark record's schema cannot be read ({_first_line(e)})"
                          ) from None


# ---- restoring --------------------------------------------------------------------------------

def _session(sql: Any) -> Any:
    """The user's SparkSession: the thread's active one, else the default one."""
    session = sql.SparkSession.getActiveSession()
    if session is None and hasattr(sql.SparkSession, "active"):
        try:
            session = sql.SparkSession.active()
        except Exception:  # no active or default session
            session = None
    if session is None:
        raise EngineError(f"this value is a Spark DataFrame and no SparkSession is active: "
                          f"{_START}")
    return session


def _verify(spark: Any, location: Location, record: dict[str, Any]) -> None:
    """Every recorded partition file is there, unchanged, and no other is."""
    prefix = record["prefix"]
    want: dict[str, dict[str, Any]] = {}
    for part in record["partitions"]:
        head, _, name = part["path"].rpartition("/")
        if head != prefix:
            raise EngineError(f"a Spark partition lies outside its prefix: {part['path']!r}")
        want[name] = part
    url = _spark_url(location, prefix)
    try:
        found = _files(spark, url)
    except Exception as e:
        raise EngineError(f"damaged engine data: {url} cannot be read ({_first_line(e)})"
                          ) from None
    missing, extra = sorted(want.keys() - found.keys()), sorted(found.keys() - want.keys())
    if missing or extra:
        raise EngineError(f"damaged engine data: under {url}, "
                          + "; ".join(f"{what} {', '.join(names[:3])}" for what, names in
                                      (("missing", missing), ("not recorded", extra)) if names))
    for name, part in want.items():
        if found[name] != (part["size"], part["sha256"]):
            raise EngineError(f"damaged engine data: {url}/{name} does not match its "
                              "recorded size and SHA-256")


# ---- the adapter ------------------------------------------------------------------------------

class SparkEngine:
    name = "spark"

    def handles(self, value: object) -> bool:
        try:
            sql, _, _ = _modules()
        except ImportError:
            return False
        classes = [sql.DataFrame]  # Classic's and Connect's DataFrames both derive from it
        connect = sys.modules.get("pyspark.sql.connect.dataframe")
        if connect is not None:
            classes.append(connect.DataFrame)
        return isinstance(value, tuple(classes))

    def choose(self, value: object, mode: str) -> tuple[str, str]:
        if mode == "skip":
            return "skip", "engines='skip'"
        if getattr(value, "isStreaming", False):
            return "skip", "a streaming DataFrame: its data is a live stream"
        if mode == "write":
            return "write", "engines='write'"
        return "write", "a Spark DataFrame is a plan over a live session, with no graph to save"

    def write(self, value: Any, location: Location, prefix: str) -> dict[str, Any]:
        url = _spark_url(location, prefix)
        spark = value.sparkSession
        value.write.mode("error").parquet(url)
        files = _files(spark, url)
        rows = _rows(spark, url)
        parts = [{"path": check_relative(f"{prefix}/{name}"), "size": size, "sha256": digest,
                  "rows": rows.get(name, 0)} for name, (size, digest) in sorted(files.items())]
        return {"engine": self.name, "form": "dataframe", "format": "parquet",
                "prefix": prefix, "schema": value.schema.json(), "columns": list(value.columns),
                "dtypes": [t for _, t in value.dtypes],
                "rows": sum(p["rows"] for p in parts), "partitions": parts}

    def restore(self, record: dict[str, Any], location: Location) -> object:
        try:
            sql, _, _ = _modules()
        except ImportError:
            raise EngineError("this value was saved by Spark: pip install pyspark to restore "
                              "it") from None
        if record.get("form") != "dataframe" or record.get("format") != "parquet":
            raise EngineError("a Spark record of an unknown form or format; a newer "
                              "hibernate may read it")
        schema = _schema(record.get("schema"))
        spark = _session(sql)
        _verify(spark, location, record)
        parts = record["partitions"]
        if not parts:
            return spark.createDataFrame([], schema)
        return spark.read.schema(schema).parquet(*[_literal(_spark_url(location, p["path"]))
                                                   for p in parts])
