"""Fuzz hibernate's native decoders: ``serializers.get(name).load(meta, buffers)`` for the
numpy, pandas, arrow and polars serializers, each in a child process under resource limits.

    python fuzz/fuzz_decoders.py --minutes 10 [--seed N] [--out DIR]
    python fuzz/fuzz_decoders.py --replay DIR/finding-....json

Valid (meta, buffers) come from dumping real values (``serializers.get(name).dump(value)``):
numpy arrays of many dtypes, shapes and orders; pandas frames, series and indexes (numeric,
object strings with None/NaN/NA gaps, categoricals, tz-aware datetimes, masked, Arrow-backed
columns, Range/Multi/Datetime/Timedelta/Categorical indexes, mixed labels); pyarrow Tables,
RecordBatches, ChunkedArrays and Arrays (nested, dictionary, large, view, union, run-end
encoded and extension types); polars frames and series. They are then mutated structurally:

- meta: any node replaced with junk of another JSON type, numbers made negative, huge or off
  by one, strings swapped for hostile values of their field (dtypes, zones, freqs, kinds),
  keys dropped or added, subtrees grafted from other values' meta;
- buffers: bits flipped, bytes and integers written, truncated, extended, inserted into,
  swapped, duplicated, dropped, added;
- Arrow IPC streams (the arrow/polars stream, each Arrow-backed pandas column), parsed with a
  small flatbuffers reader so fields are patched in place: message and body lengths, record
  batch and field-node lengths and null counts, buffer offsets and lengths, the compression
  codec and each compressed buffer's uncompressed-length prefix, dictionary ids and delta
  flags, field types, widths, units, nullability, names and metadata; bytes flipped in a
  message's metadata or body; lengths made huge coherently (batch, nodes and meta together);
- streams re-written by pyarrow from a pristine one: a column replaced by an exotic Arrow
  array (union, run-end encoded, views, map, decimal32/64/256, float16, intervals, null,
  empty struct, extension types, delta dictionaries, odd time zones), extension type names
  and metadata set on a field (arrow.*, pandas.*, polars' own ``_POLARS_PYTHON_OBJECT``,
  ``arrow.py_extension_type`` with a pickle), polars' field metadata (``_PL_CATEGORICAL2``,
  ``_PL_ENUM_VALUES2``, ...) set to junk, compression (lz4, zstd), several batches, dictionary
  deltas, the legacy IPC format.

Each mutant is loaded (and its result printed: ``repr``) in a child process that first warms
up (imports, thread pools) and then limits itself: RLIMIT_AS = its size + 256 MiB, a CPU time
limit per case. A child runs a batch of cases, writing each case's number before running it,
so the parent can tell which input killed it; then the parent starts a new child for the rest.
Outcomes: ok (a value; an Exception from printing it is fine too), clean error (an Exception
subclass) or a finding:

- crash: the child died from a signal (SIGSEGV, SIGABRT, ...) or exited by itself;
- panic: a BaseException that is not an Exception escaped (pyo3's PanicException, ...);
- memory: MemoryError, or any exception whose cause or context is one (an Arrow allocation
  failure re-raised as ValueError is still an allocation beyond the limit), or the child died
  from an allocation failure;
- hang: more than CASE_CPU seconds of CPU (SIGXCPU) or CASE_WALL seconds of wall time;
- code: the load spawned a process or unpickled (audit events), which a decoder never may;
- file: the load opened a file outside Python's own directories and the time zone database
  (a path taken from the data: pandas resolving an Arrow time zone "dateutil//etc/passwd").

"use" in a finding's name means it happened while printing the loaded value, not in load.
Findings are minimized (ops removed while the outcome stays the same) and written to
``<out>/finding-<class>-<serializer>-<digest>.json`` (meta, buffers base64, how they were made),
which ``--replay`` runs again in a child. Importable: ``run(seconds, workdir, seed)`` returns
Stats (tests/security/test_fuzz_decoders.py runs it for about 15 seconds).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import math
import os
import random
import re
import resource
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SERIALIZERS = ("numpy", "pandas", "arrow", "polars")
MEMORY_HEADROOM = 256 << 20   # RLIMIT_AS = the warmed-up child's size + this
CASE_CPU = 10                 # seconds of CPU time per case (SIGXCPU past it)
CASE_WALL = 40.0              # seconds of wall time per case (then SIGABRT, SIGKILL)
BATCH = 200                   # cases per child
MAX_INPUT = 8 << 20           # bytes of buffers per case, at most
MAX_JUNK_DEPTH = 120          # nesting of junk JSON
ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
FINDINGS = ("crash", "panic", "memory", "hang", "code", "file", "self-check")


def _ensure_src() -> None:
    if SRC.is_dir() and str(SRC) not in sys.path:
        sys.path.insert(0, str(SRC))


# ---------------------------------------------------------------------------------------
# the corpus: real values, dumped


@dataclass
class Seed:
    serializer: str
    label: str              # how the value was made
    meta: dict[str, Any]
    buffers: list[bytes]


@dataclass
class Case:
    serializer: str
    label: str              # the seed's label
    base: int               # index of the seed in the corpus
    ops: list[list[Any]]    # the mutations, applied in order to the seed
    view: str               # how buffers are handed over: bytes, memoryview, bytearray
    meta: dict[str, Any] = field(default_factory=dict)
    buffers: list[bytes] = field(default_factory=list)
    mode: str = "trusted"   # or "untrusted": loaded as from an untrusted file (data_only)

    def record(self) -> dict[str, Any]:
        return {"serializer": self.serializer, "seed": self.label, "base": self.base,
                "ops": self.ops, "view": self.view, "mode": self.mode, "meta": self.meta,
                "buffers": [base64.b64encode(b).decode() for b in self.buffers]}


def _values(small: bool = False) -> list[tuple[str, str, Any]]:
    """(serializer, label, value) for the corpus; ``small``: a few, for a child's warm-up."""
    import datetime
    import decimal
    import uuid

    import numpy as np
    import pandas as pd
    import polars as pl
    import pyarrow as pa

    out: list[tuple[str, str, Any]] = []

    def add(ser: str, label: str, value: Any) -> None:
        out.append((ser, label, value))

    # numpy
    for dt in (["<i8", "<U4"] if small else
               ["?", "i1", "u1", "<i2", ">i2", "<u2", "<i4", ">i4", "<u4", "<i8", ">i8", "<u8",
                "<f2", "<f4", ">f4", "<f8", ">f8", "<c8", "<c16", "g", "G", "<M8[ns]",
                "<M8[D]", ">M8[s]", "<m8[us]", "<m8[h]", "<U4", ">U2", "S3"]):
        a = np.arange(12).astype(dt)
        add("numpy", f"np.arange(12).astype({dt!r})", a)
        if small:
            continue
        add("numpy", f"np.arange(12).astype({dt!r}).reshape(3, 4)", a.reshape(3, 4))
        add("numpy", f"np.arange(12).astype({dt!r}).reshape(2, 3, 2, order='F')",
            a.reshape(2, 3, 2, order="F"))
    if not small:
        add("numpy", "np.frombuffer(bytes(range(60)), 'V5')",
            np.frombuffer(bytes(range(60)), "V5").copy())
        add("numpy", "np.array(3.5)", np.array(3.5))
        add("numpy", "np.zeros((0,), 'f8')", np.zeros((0,), "f8"))
        add("numpy", "np.zeros((5, 0, 3), 'i4')", np.zeros((5, 0, 3), "i4"))
        add("numpy", "np.arange(40.0)[::3]", np.arange(40.0)[::3])
        add("numpy", "np.asfortranarray(np.eye(4, dtype=bool))",
            np.asfortranarray(np.eye(4, dtype=bool)))
        add("numpy", "np.arange(5000, dtype='<f8')", np.arange(5000, dtype="<f8"))
        add("numpy", "np.array(['', 'é', '日本語'], dtype='<U3')",
            np.array(["", "é", "日本語"], dtype="<U3"))

    # pandas
    n = 5
    gaps = pd.Series(["a", None, "ccc", np.nan, pd.NA], dtype=object)
    add("pandas", "DataFrame(int64 + object str with None/NaN/NA gaps + categorical, RangeIndex)",
        pd.DataFrame({"i": np.arange(n), "s": gaps,
                      "c": pd.Categorical(["a", "b", None, "a", "b"], ordered=True)}))
    add("pandas", "Series(DatetimeTZ Europe/Paris, DatetimeIndex freq=D)",
        pd.Series(pd.date_range("2021-03-27", periods=n, freq="h", tz="Europe/Paris"),
                  index=pd.date_range("2020-01-01", periods=n, freq="D"), name="when"))
    if not small:
        add("pandas", "DataFrame(numeric dtypes, datetime, timedelta, RangeIndex step 3)",
            pd.DataFrame({"i1": np.arange(n, dtype="i1"), "u8": np.arange(n, dtype="u8"),
                          "f4": np.arange(n, dtype="f4") / 3, "b": [True, False] * 2 + [True],
                          "dt": pd.date_range("2021", periods=n, freq="h"),
                          "td": pd.to_timedelta(np.arange(n), "s"),
                          "c16": np.arange(n) * 1j},
                         index=pd.RangeIndex(2, 2 + 3 * n, 3, name="r")))
        add("pandas", "DataFrame(object str columns: unicode, empty, NUL)",
            pd.DataFrame({"u": pd.Series(["é", "日本", "", "\x00", "z"], dtype=object),
                          "t": pd.Series(["x"] * n, dtype=object)}))
        add("pandas", "DataFrame(masked Int8/UInt64/Float32/boolean with NA)",
            pd.DataFrame({"i": pd.array([1, None, 3, 4, None], dtype="Int8"),
                          "u": pd.array([1, 2, None, 4, 5], dtype="UInt64"),
                          "f": pd.array([1.5, None, 3, 4, 5], dtype="Float32"),
                          "b": pd.array([True, None, False, True, None], dtype="boolean")}))
        add("pandas", "DataFrame(Arrow-backed: int64, list<int32>, struct, dictionary, "
            "timestamp tz, decimal, string[pyarrow], string[python], str)",
            pd.DataFrame({
                "ai": pd.array([1, None, 3, 4, 5], dtype=pd.ArrowDtype(pa.int64())),
                "al": pd.array([[1], [], None, [2, 3], [4]],
                               dtype=pd.ArrowDtype(pa.list_(pa.int32()))),
                "as": pd.array([{"a": 1, "b": "x"}] * n,
                               dtype=pd.ArrowDtype(pa.struct([("a", pa.int64()),
                                                              ("b", pa.string())]))),
                "ad": pd.Series(pa.array(["p", "q", "p", None, "q"]).dictionary_encode(),
                                dtype=pd.ArrowDtype(pa.dictionary(pa.int32(), pa.string()))),
                "at": pd.array([1, 2, 3, 4, None],
                               dtype=pd.ArrowDtype(pa.timestamp("ns", "Asia/Tokyo"))),
                "dc": pd.array([decimal.Decimal("1.25")] * n,
                               dtype=pd.ArrowDtype(pa.decimal128(9, 2))),
                "sp": pd.array(["a", None, "c", "d", "e"], dtype=pd.StringDtype("pyarrow")),
                "sy": pd.array(["a", None, "c", "d", "e"], dtype=pd.StringDtype("python")),
                "st": pd.Series(["a", None, "c", "d", "e"])}))
        add("pandas", "Series(ArrowDtype(null), RangeIndex)",
            pd.Series(pd.array([None] * 3, dtype=pd.ArrowDtype(pa.null()))))
        add("pandas", "DataFrame(ArrowDtype(null) column, RangeIndex)",
            pd.DataFrame({"z": pd.array([None] * 3, dtype=pd.ArrowDtype(pa.null()))}))
        add("pandas", "DataFrame(tz-aware UTC and Asia/Kolkata, MultiIndex columns)",
            pd.DataFrame({("a", 1): pd.date_range("2020", periods=n, tz="UTC"),
                          ("a", 2): pd.date_range("2020", periods=n, freq="min",
                                                  tz="Asia/Kolkata")}))
        add("pandas", "Series(float, MultiIndex (str, int) named, name=('n', 1))",
            pd.Series(np.arange(6.0), name=("n", 1),
                      index=pd.MultiIndex.from_product([["a", "b"], [1, 2, 3]],
                                                       names=["x", "y"])))
        add("pandas", "Series(categorical int categories, CategoricalIndex)",
            pd.Series(pd.Categorical([3, 1, None, 3]),
                      index=pd.CategoricalIndex(["p", "q", "p", "r"])))
        add("pandas", "Series(int, TimedeltaIndex freq=2h, attrs, no duplicate labels)",
            pd.Series(np.arange(4), index=pd.timedelta_range("1h", periods=4, freq="2h"))
            .set_flags(allows_duplicate_labels=False))
        s = pd.Series([1, 2, 3], index=pd.Index([1, "a", 2.5], dtype=object), name=float("nan"))
        s.attrs = {"unit": "m", "n": [1, {"b": None}]}
        add("pandas", "Series(int, object Index of mixed labels [1, 'a', 2.5], name=nan, attrs)", s)
        add("pandas", "Index(object str with None, name=('t', 2))",
            pd.Index(["a", None, "b"], dtype=object, name=("t", 2)))
        add("pandas", "RangeIndex(-5, 100, 7, name='r')", pd.RangeIndex(-5, 100, 7, name="r"))
        add("pandas", "MultiIndex.from_arrays([[1, 1, 2], ['x', None, 'y']])",
            pd.MultiIndex.from_arrays([[1, 1, 2], ["x", None, "y"]]))
        add("pandas", "DatetimeIndex(tz UTC, freq=15min)",
            pd.date_range("2022", periods=4, freq="15min", tz="UTC"))
        add("pandas", "DataFrame(0 rows, 2 columns)", pd.DataFrame({"a": [], "b": []}))
        add("pandas", "DataFrame(3 rows, 0 columns)", pd.DataFrame(index=range(3)))
        add("pandas", "DataFrame(duplicate column names)",
            pd.DataFrame([[1, 2], [3, 4]], columns=["a", "a"]))

    # arrow
    add("arrow", "pa.table(int64 + string with nulls)",
        pa.table({"i": pa.array([1, None, 3]), "s": pa.array(["x", None, "z"])}))
    if not small:
        k = 4
        add("arrow", "pa.table(primitive types, with nulls)", pa.table({
            "i8": pa.array([1, None, -3, 4], pa.int8()),
            "u64": pa.array([1, 2, None, 2**64 - 1], pa.uint64()),
            "f16": pa.array(np.arange(k, dtype=np.float16)),
            "f64": pa.array([1.5, None, float("nan"), -0.0]),
            "b": pa.array([True, None, False, True]),
            "ls": pa.array(["a", "bb", None, ""], pa.large_string()),
            "bin": pa.array([b"\x00", None, b"abc", b""]),
            "lb": pa.array([b"x", None, b"", b"yy"], pa.large_binary()),
            "fsb": pa.array([b"abc", None, b"def", b"ghi"], pa.binary(3)),
            "d32": pa.array([datetime.date(2020, 1, 1)] * k, pa.date32()),
            "d64": pa.array([datetime.date(2020, 1, 1)] * k, pa.date64()),
            "t32": pa.array([1, 2, None, 4], pa.time32("s")),
            "t64": pa.array([1, 2, None, 4], pa.time64("ns")),
            "ts": pa.array([1, 2, None, 4], pa.timestamp("ms")),
            "tsz": pa.array([1, 2, None, 4], pa.timestamp("us", "UTC")),
            "tsn": pa.array([1, 2, None, 4], pa.timestamp("ns", "America/New_York")),
            "dur": pa.array([1, 2, None, 4], pa.duration("ms")),
            "mdn": pa.array([pa.MonthDayNano([1, 2, 3]), None] * 2,
                            pa.month_day_nano_interval()),
            "dec": pa.array([decimal.Decimal("1.250"), None] * 2, pa.decimal128(10, 3)),
            "d256": pa.array([decimal.Decimal("1.5"), None] * 2, pa.decimal256(40, 5)),
            "null": pa.nulls(k)}))
        add("arrow", "pa.table(nested: list, large_list, fixed_size_list, struct, map, "
            "list<struct>, dictionary, list<dictionary>)", pa.table({
                "l": pa.array([[1, 2], None, [], [3]], pa.list_(pa.int32())),
                "ll": pa.array([["a"], None, [], ["b", None]], pa.large_list(pa.string())),
                "fsl": pa.array([[1.0, 2.0, 3.0], None] * 2, pa.list_(pa.float32(), 3)),
                "st": pa.array([{"a": 1, "b": ["x"]}, None, {"a": None, "b": []},
                                {"a": 4, "b": None}],
                               pa.struct([("a", pa.int64()), ("b", pa.list_(pa.string()))])),
                "m": pa.array([[("k", 1)], None, [], [("a", 2), ("b", 3)]],
                              pa.map_(pa.string(), pa.int64())),
                "ls": pa.array([[{"x": 1}], [], None, [{"x": None}]],
                               pa.list_(pa.struct([("x", pa.int16())]))),
                "dct": pa.DictionaryArray.from_arrays(pa.array([0, 1, None, 0], pa.int8()),
                                                      ["p", "q"]),
                "dco": pa.DictionaryArray.from_arrays(pa.array([2, 1, 0, 2], pa.int32()),
                                                      pa.array([10, 20, 30]), ordered=True),
                "ld": pa.array([["a", "b"], None, [], ["a"]],
                               pa.list_(pa.dictionary(pa.int16(), pa.string())))}))
        add("arrow", "pa.table(views, unions, run-end encoded, empty struct)", pa.table({
            "sv": pa.array(["short", None, "a string longer than twelve bytes", ""],
                           pa.string_view()),
            "bv": pa.array([b"x" * 20, None, b"y", b""], pa.binary_view()),
            "lv": pa.ListViewArray.from_arrays(pa.array([0, 1, 0, 2], pa.int32()),
                                               pa.array([2, 1, 0, 1], pa.int32()),
                                               pa.array([5, 6, 7])),
            "us": pa.UnionArray.from_sparse(pa.array([0, 1, 0, 1], pa.int8()),
                                            [pa.array([1, 2, 3, 4]), pa.array(list("abcd"))]),
            "ud": pa.UnionArray.from_dense(pa.array([0, 1, 1, 0], pa.int8()),
                                           pa.array([0, 0, 1, 1], pa.int32()),
                                           [pa.array([1, 2]), pa.array(["a", "b"])]),
            "ree": pa.RunEndEncodedArray.from_arrays(pa.array([1, 4], pa.int32()),
                                                     pa.array(["v", None])),
            "es": pa.array([{}] * k, pa.struct([]))}))
        add("arrow", "pa.table(extension types: uuid, bool8, json, fixed_shape_tensor, opaque)",
            pa.table({
                "uuid": pa.ExtensionArray.from_storage(
                    pa.uuid(), pa.array([uuid.UUID(int=i).bytes for i in range(k)],
                                        pa.binary(16))),
                "b8": pa.ExtensionArray.from_storage(pa.bool8(),
                                                     pa.array([0, 1, None, 2], pa.int8())),
                "js": pa.ExtensionArray.from_storage(pa.json_(),
                                                     pa.array(['{"a": 1}', None, "[]", "2"])),
                "ten": pa.ExtensionArray.from_storage(
                    pa.fixed_shape_tensor(pa.int32(), [2, 2]),
                    pa.array([[1, 2, 3, 4]] * k, pa.list_(pa.int32(), 4))),
                "op": pa.ExtensionArray.from_storage(pa.opaque(pa.binary(), "t", "v"),
                                                     pa.array([b"x", None, b"", b"z"]))}))
        add("arrow", "pa.RecordBatch(int32, float64, string)", pa.record_batch({
            "a": pa.array([1, 2, 3], pa.int32()), "b": pa.array([0.5, None, 2.5]),
            "c": pa.array(["x", "y", None])}))
        add("arrow", "pa.chunked_array([[1, 2], [], [3, None]])",
            pa.chunked_array([[1, 2], [], [3, None]]))
        add("arrow", "pa.array(range(10)).slice(3, 5)", pa.array(range(10)).slice(3, 5))
        add("arrow", "pa.array(['a', None, 'ccc']).dictionary_encode()",
            pa.array(["a", None, "ccc"]).dictionary_encode())
        add("arrow", "pa.array([{'x': [1, None]}, None])",
            pa.array([{"x": [1, None]}, None]))
        add("arrow", "pa.nulls(3)", pa.nulls(3))
        add("arrow", "pa.table({}) (no columns)", pa.table({}))
        add("arrow", "pa.table(int64, 0 rows)", pa.table({"a": pa.array([], pa.int64())}))
        for label, ext in (("pandas period", pd.period_range("2020", periods=3, freq="D")),
                           ("pandas interval", pd.interval_range(0, 3))):
            try:
                add("arrow", f"pa.array({label} array)", pa.array(ext))
            except Exception:  # pandas without its Arrow extension types
                pass

    # polars
    add("polars", "pl.DataFrame(int, str, Categorical)", pl.DataFrame({
        "a": [1, 2, None], "s": ["x", None, "z"],
        "c": pl.Series(["u", "v", "u"], dtype=pl.Categorical)}))
    if not small:
        add("polars", "pl.DataFrame(many dtypes)", pl.DataFrame({
            "i8": pl.Series([1, None, 3], dtype=pl.Int8),
            "u64": pl.Series([1, 2, None], dtype=pl.UInt64),
            "f32": pl.Series([1.5, None, 2.0], dtype=pl.Float32),
            "b": [True, None, False],
            "bin": [b"a", None, b""],
            "d": [datetime.date(2020, 1, 1), None, datetime.date(1970, 1, 1)],
            "dt": pl.Series([1, 2, None]).cast(pl.Datetime("us", "Europe/Paris")),
            "dtn": pl.Series([1, 2, 3]).cast(pl.Datetime("ns")),
            "du": pl.Series([1, None, 3]).cast(pl.Duration("ms")),
            "t": pl.Series([1, 2, 3]).cast(pl.Time),
            "dec": pl.Series([1.5, 2, None]).cast(pl.Decimal(10, 2)),
            "e": pl.Series(["x", "y", None], dtype=pl.Enum(["x", "y"])),
            "l": pl.Series([[1, 2], None, []], dtype=pl.List(pl.Int64)),
            "arr": pl.Series([[1, 2], [3, 4], None], dtype=pl.Array(pl.Int8, 2)),
            "st": pl.Series([{"a": 1, "b": "x"}, None, {"a": None, "b": "y"}]),
            "n": pl.Series([None, None, None], dtype=pl.Null)}))
        add("polars", "pl.Series('cat', Categorical)",
            pl.Series("cat", ["a", None, "b", "a"], dtype=pl.Categorical))
        add("polars", "pl.Series('e', Enum(['lo', 'hi']))",
            pl.Series("e", ["lo", "hi", None], dtype=pl.Enum(["lo", "hi"])))
        add("polars", "pl.Series('ls', List(String))",
            pl.Series("ls", [["a", None], [], None]))
        add("polars", "pl.Series('st', Struct(list, cat))", pl.Series("st", [
            {"l": [1], "c": "p"}, {"l": None, "c": None}],
            dtype=pl.Struct({"l": pl.List(pl.Int32), "c": pl.Categorical})))
        add("polars", "pl.Series('n', Null, length 4)", pl.Series("n", [None] * 4))
        add("polars", "pl.Series('', String)", pl.Series("", ["é", "", None]))
        add("polars", "pl.DataFrame() (empty)", pl.DataFrame())
        add("polars", "pl.DataFrame(0 rows, 2 columns)",
            pl.DataFrame({"a": pl.Series([], dtype=pl.Int64), "b": pl.Series([], dtype=pl.String)}))
    return out


def corpus(small: bool = False) -> list[Seed]:
    _ensure_src()
    from hibernate import serializers

    seeds = []
    for ser, label, value in _values(small):
        try:
            dumped = serializers.get(ser).dump(value)
        except serializers.Decline as e:  # this library version has no native form for it
            print(f"corpus: {ser} declines {label}: {e}", file=sys.stderr)
            continue
        meta = json.loads(json.dumps(dumped.meta))  # as the manifest gives it back
        seeds.append(Seed(ser, label, meta, [bytes(memoryview(b).cast("B"))
                                             for b in dumped.buffers]))
    return seeds


# ---------------------------------------------------------------------------------------
# just enough of a flatbuffers reader to find Arrow IPC fields in a stream, in place


class _Bad(Exception):
    pass


_SCALARS = {1: "<B", 2: "<h", 4: "<i", 8: "<q"}


@dataclass
class Slot:
    name: str
    pos: int
    size: int   # bytes; 0: a string (pos, length in ``length``)
    length: int = 0


@dataclass
class Msg:
    start: int
    meta: tuple[int, int]
    body: tuple[int, int]
    kind: int


class _FB:
    def __init__(self, b: bytes, lo: int, hi: int) -> None:
        self.b, self.lo, self.hi = b, lo, min(hi, len(b))

    def get(self, fmt: str, p: int) -> int:
        if p < self.lo or p + struct.calcsize(fmt) > self.hi:
            raise _Bad(p)
        return int(struct.unpack_from(fmt, self.b, p)[0])

    def field(self, t: int, i: int) -> int | None:
        vt = t - self.get("<i", t)
        if 4 + 2 * i + 2 > self.get("<H", vt):
            return None
        off = self.get("<H", vt + 4 + 2 * i)
        return t + off if off else None

    def ref(self, p: int) -> int:
        return p + self.get("<I", p)

    def vector(self, p: int) -> tuple[int, int]:
        v = self.ref(p)
        n = self.get("<I", v)
        if n > 100_000:
            raise _Bad(n)
        return v + 4, n


class _Layout:
    """The messages of an IPC stream and the fields found in them."""

    # (field index, slot name, size) of each type table, by its Type union id
    TYPES: dict[int, list[tuple[int, str, int]]] = {
        2: [(0, "Int.bitWidth", 4), (1, "Int.is_signed", 1)],
        3: [(0, "FloatingPoint.precision", 2)],
        7: [(0, "Decimal.precision", 4), (1, "Decimal.scale", 4), (2, "Decimal.bitWidth", 4)],
        8: [(0, "Date.unit", 2)],
        9: [(0, "Time.unit", 2), (1, "Time.bitWidth", 4)],
        10: [(0, "Timestamp.unit", 2)],
        11: [(0, "Interval.unit", 2)],
        14: [(0, "Union.mode", 2)],
        15: [(0, "FixedSizeBinary.byteWidth", 4)],
        16: [(0, "FixedSizeList.listSize", 4)],
        17: [(0, "Map.keysSorted", 1)],
        18: [(0, "Duration.unit", 2)],
    }

    def __init__(self, b: bytes) -> None:
        self.b = b
        self.slots: list[Slot] = []
        self.msgs: list[Msg] = []
        try:
            self._parse()
        except (_Bad, struct.error, RecursionError):
            pass

    def add(self, fb: _FB, name: str, t: int, i: int, size: int) -> None:
        p = fb.field(t, i)
        if p is not None:
            fb.get(_SCALARS[size], p)
            self.slots.append(Slot(name, p, size))

    def string(self, fb: _FB, name: str, t: int, i: int) -> None:
        p = fb.field(t, i)
        if p is not None:
            start, n = fb.vector(p)
            self.slots.append(Slot(name + ".len", start - 4, 4))
            if n and start + n <= fb.hi:
                self.slots.append(Slot(name, start, 0, n))

    def _parse(self) -> None:
        b, pos = self.b, 0
        while pos + 8 <= len(b) and len(self.msgs) < 1000:
            if struct.unpack_from("<I", b, pos)[0] == 0xFFFFFFFF:
                lenpos, lo = pos + 4, pos + 8
            else:
                lenpos, lo = pos, pos + 4
            self.slots.append(Slot("frame.metadata_length", lenpos, 4))
            mlen = struct.unpack_from("<i", b, lenpos)[0]
            if mlen <= 0:
                return
            hi = lo + mlen
            fb = _FB(b, lo, hi)
            root = fb.ref(lo)
            self.add(fb, "Message.version", root, 0, 2)
            self.add(fb, "Message.header_type", root, 1, 1)
            self.add(fb, "Message.bodyLength", root, 3, 8)
            p = fb.field(root, 3)
            body_len = fb.get("<q", p) if p is not None else 0
            ht = fb.field(root, 1)
            kind = fb.get("<B", ht) if ht is not None else 0
            msg = Msg(pos, (lo, hi), (hi, hi + max(0, body_len)), kind)
            self.msgs.append(msg)
            h = fb.field(root, 2)
            if h is not None:
                h = fb.ref(h)
                if kind == 1:
                    self._schema(fb, h)
                elif kind == 3:
                    self._batch(fb, h, "RecordBatch", msg)
                elif kind == 2:
                    self.add(fb, "DictionaryBatch.id", h, 0, 8)
                    self.add(fb, "DictionaryBatch.isDelta", h, 2, 1)
                    d = fb.field(h, 1)
                    if d is not None:
                        self._batch(fb, fb.ref(d), "DictionaryBatch.RecordBatch", msg)
            if body_len < 0:
                return
            pos = hi + body_len

    def _metadata(self, fb: _FB, t: int, i: int, prefix: str) -> None:
        p = fb.field(t, i)
        if p is None:
            return
        start, n = fb.vector(p)
        self.slots.append(Slot(prefix + ".custom_metadata.count", start - 4, 4))
        for k in range(n):
            kv = fb.ref(start + 4 * k)
            self.string(fb, prefix + ".KeyValue.key", kv, 0)
            self.string(fb, prefix + ".KeyValue.value", kv, 1)

    def _schema(self, fb: _FB, t: int) -> None:
        self.add(fb, "Schema.endianness", t, 0, 2)
        self._metadata(fb, t, 2, "Schema")
        p = fb.field(t, 1)
        if p is not None:
            start, n = fb.vector(p)
            self.slots.append(Slot("Schema.fields.count", start - 4, 4))
            for k in range(n):
                self._field(fb, fb.ref(start + 4 * k), 0)

    def _field(self, fb: _FB, t: int, depth: int) -> None:
        if depth > 32:
            raise _Bad(depth)
        self.string(fb, "Field.name", t, 0)
        self.add(fb, "Field.nullable", t, 1, 1)
        self.add(fb, "Field.type_type", t, 2, 1)
        tt = fb.field(t, 2)
        ty = fb.field(t, 3)
        if tt is not None and ty is not None:
            tid, tt_table = fb.get("<B", tt), fb.ref(ty)
            for i, name, size in self.TYPES.get(tid, []):
                self.add(fb, name, tt_table, i, size)
            if tid == 10:
                self.string(fb, "Timestamp.timezone", tt_table, 1)
            if tid == 14:
                q = fb.field(tt_table, 1)
                if q is not None:
                    start, n = fb.vector(q)
                    self.slots.append(Slot("Union.typeIds.count", start - 4, 4))
                    self.slots += [Slot("Union.typeIds", start + 4 * k, 4) for k in range(n)]
        d = fb.field(t, 4)
        if d is not None:
            d = fb.ref(d)
            self.add(fb, "DictionaryEncoding.id", d, 0, 8)
            self.add(fb, "DictionaryEncoding.isOrdered", d, 2, 1)
            self.add(fb, "DictionaryEncoding.dictionaryKind", d, 3, 2)
            it = fb.field(d, 1)
            if it is not None:
                it = fb.ref(it)
                self.add(fb, "DictionaryEncoding.indexType.bitWidth", it, 0, 4)
                self.add(fb, "DictionaryEncoding.indexType.is_signed", it, 1, 1)
        c = fb.field(t, 5)
        if c is not None:
            start, n = fb.vector(c)
            self.slots.append(Slot("Field.children.count", start - 4, 4))
            for k in range(n):
                self._field(fb, fb.ref(start + 4 * k), depth + 1)
        self._metadata(fb, t, 6, "Field")

    def _batch(self, fb: _FB, t: int, prefix: str, msg: Msg) -> None:
        self.add(fb, prefix + ".length", t, 0, 8)
        compressed = False
        c = fb.field(t, 3)
        if c is not None:
            compressed = True
            c = fb.ref(c)
            self.add(fb, "BodyCompression.codec", c, 0, 1)
            self.add(fb, "BodyCompression.method", c, 1, 1)
        for i, what in ((1, "FieldNode"), (2, "Buffer")):
            p = fb.field(t, i)
            if p is None:
                continue
            start, n = fb.vector(p)
            self.slots.append(Slot(f"{prefix}.{what}.count", start - 4, 4))
            for k in range(n):
                a, z = ("length", "null_count") if what == "FieldNode" else ("offset", "length")
                self.slots.append(Slot(f"{prefix}.{what}.{a}", start + 16 * k, 8))
                self.slots.append(Slot(f"{prefix}.{what}.{z}", start + 16 * k + 8, 8))
                if what == "Buffer" and compressed:
                    off, length = struct.unpack_from("<qq", fb.b, start + 16 * k)
                    at = msg.body[0] + off
                    if length >= 8 and at >= 0 and at + 8 <= len(self.b):
                        self.slots.append(Slot("body.uncompressed_length", at, 8))
        p = fb.field(t, 4)
        if p is not None:
            start, n = fb.vector(p)
            self.slots += [Slot(f"{prefix}.variadicBufferCounts", start + 8 * k, 8)
                           for k in range(n)]


def _patch(b: bytearray, slot: Slot, value: int) -> None:
    bits = 8 * slot.size
    value &= (1 << bits) - 1
    b[slot.pos:slot.pos + slot.size] = value.to_bytes(slot.size, "little")


# ---------------------------------------------------------------------------------------
# exotic Arrow arrays (valid), for substitution into a stream


EXOTIC = ("null", "empty_struct", "ree", "ree_long", "union_sparse", "union_dense",
          "string_view", "binary_view", "list_view", "large_list_view", "map", "decimal32",
          "decimal64", "decimal256", "float16", "interval_mdn", "fsl0", "fsb1", "fsb16",
          "fsl4_i32", "int8", "uint64", "int64", "binary", "string", "large_string",
          "dict_i8_str", "dict_u64_int", "dict_of_list", "dict_delta", "uuid", "bool8", "json",
          "tensor", "opaque", "struct_nested", "list_of_null", "date64", "time32_ms",
          "duration_s", "ts:dateutil//etc/passwd", "ts:/etc/passwd", "ts:+99:99",
          "ts:Europe/Nowhere", "ts:", "ts:UTC", "ts:+05:30", "ts:../../../../etc/passwd",
          "period", "interval", "sliced", "struct_shape")


def exotic(name: str, n: int) -> Any:
    import datetime
    import decimal
    import uuid

    import numpy as np
    import pandas as pd
    import pyarrow as pa

    ints = pa.array(range(n))
    half = pa.array([i % 2 for i in range(n)], pa.int8())
    if name == "null":
        return pa.nulls(n)
    if name == "empty_struct":
        return pa.array([{}] * n, pa.struct([]))
    if name in ("ree", "ree_long"):
        if n == 0:
            return pa.RunEndEncodedArray.from_arrays(pa.array([], pa.int32()), pa.array([]))
        ends = [n] if name == "ree" else list(range(1, n + 1))
        return pa.RunEndEncodedArray.from_arrays(pa.array(ends, pa.int32()),
                                                 pa.array(["v"] * len(ends)))
    if name == "union_sparse":
        return pa.UnionArray.from_sparse(half, [ints, pa.array(["s"] * n)])
    if name == "union_dense":
        return pa.UnionArray.from_dense(half, pa.array([i // 2 for i in range(n)], pa.int32()),
                                        [ints, pa.array(["s"] * n)])
    if name == "string_view":
        return pa.array([f"a string view value longer than 12 #{i}" for i in range(n)],
                        pa.string_view())
    if name == "binary_view":
        return pa.array([b"\xff" * (i % 20) for i in range(n)], pa.binary_view())
    if name in ("list_view", "large_list_view"):
        cls = pa.ListViewArray if name == "list_view" else pa.LargeListViewArray
        it = pa.int32() if name == "list_view" else pa.int64()
        return cls.from_arrays(pa.array([0] * n, it), pa.array([1] * n, it), pa.array([5]))
    if name == "map":
        return pa.array([[("k", i)] for i in range(n)], pa.map_(pa.string(), pa.int64()))
    if name.startswith("decimal"):
        t = {"decimal32": pa.decimal32(5, 2), "decimal64": pa.decimal64(15, 2),
             "decimal256": pa.decimal256(40, 5)}[name]
        return pa.array([decimal.Decimal("1.5")] * n, t)
    if name == "float16":
        return pa.array(np.arange(n, dtype=np.float16))
    if name == "interval_mdn":
        return pa.array([pa.MonthDayNano([1, -2, 3])] * n, pa.month_day_nano_interval())
    if name == "fsl0":
        return pa.array([[]] * n, pa.list_(pa.int32(), 0))
    if name == "fsb1":
        return pa.array([b"x"] * n, pa.binary(1))
    if name == "fsb16":
        return pa.array([uuid.UUID(int=i).bytes for i in range(n)], pa.binary(16))
    if name == "fsl4_i32":
        return pa.array([[1, 2, 3, 4]] * n, pa.list_(pa.int32(), 4))
    if name in ("int8", "uint64", "int64"):
        return pa.array([i % 100 for i in range(n)], getattr(pa, name)())
    if name in ("binary", "string", "large_string"):
        return pa.array(["x" * (i % 5) for i in range(n)], getattr(pa, name)())
    if name == "dict_i8_str":
        return pa.DictionaryArray.from_arrays(half, ["a", "b"])
    if name == "dict_u64_int":
        return pa.DictionaryArray.from_arrays(pa.array([i % 2 for i in range(n)], pa.uint64()),
                                              pa.array([7, 8]))
    if name == "dict_of_list":
        return pa.DictionaryArray.from_arrays(half, pa.array([[1], [2, 3]]))
    if name == "dict_delta":
        if n < 2:
            return pa.DictionaryArray.from_arrays(pa.array([0] * n, pa.int8()), ["a"])
        h = n // 2
        return pa.chunked_array([
            pa.DictionaryArray.from_arrays(pa.array([0] * h, pa.int8()), ["a", "b"]),
            pa.DictionaryArray.from_arrays(pa.array([2] * (n - h), pa.int8()), ["a", "b", "c"])])
    if name == "uuid":
        return pa.ExtensionArray.from_storage(pa.uuid(), exotic("fsb16", n))
    if name == "bool8":
        return pa.ExtensionArray.from_storage(pa.bool8(), half)
    if name == "json":
        return pa.ExtensionArray.from_storage(pa.json_(), pa.array(['{"a": 1}'] * n))
    if name == "tensor":
        return pa.ExtensionArray.from_storage(pa.fixed_shape_tensor(pa.int32(), [2, 2]),
                                              exotic("fsl4_i32", n))
    if name == "opaque":
        return pa.ExtensionArray.from_storage(pa.opaque(pa.binary(), "t", "v"),
                                              pa.array([b"o"] * n))
    if name == "struct_nested":
        return pa.array([{"a": [{"b": "x"}]}] * n)
    if name == "struct_shape":  # variable_shape_tensor's storage
        return pa.array([{"data": [1, 2], "shape": [1, 2]}] * n,
                        pa.struct([("data", pa.list_(pa.int32())),
                                   ("shape", pa.list_(pa.int32(), 2))]))
    if name == "list_of_null":
        return pa.array([[None]] * n, pa.list_(pa.null()))
    if name == "date64":
        return pa.array([datetime.date(2020, 1, 1)] * n, pa.date64())
    if name == "time32_ms":
        return pa.array([1000] * n, pa.time32("ms"))
    if name == "duration_s":
        return pa.array([5] * n, pa.duration("s"))
    if name.startswith("ts:"):
        return pa.array([10**15] * n, pa.timestamp("us", tz=name[3:] or None))
    if name == "period":
        return pa.array(pd.period_range("2020", periods=n, freq="D"))
    if name == "interval":
        return pa.array(pd.interval_range(0, n) if n else pd.interval_range(0, 1)[:0])
    if name == "sliced":
        return pa.array(range(n + 7)).slice(7)
    raise KeyError(name)


# ext name -> (storage exotic, metadata samples)
EXT_NAMES: dict[str, tuple[str | None, list[str]]] = {
    "_POLARS_PYTHON_OBJECT": ("uint64", ["", "x"]),
    "arrow.uuid": ("fsb16", [""]),
    "arrow.bool8": ("int8", [""]),
    "arrow.json": ("string", ["", "{}"]),
    "arrow.opaque": ("binary", ['{"type_name": "x", "vendor_name": "y"}', "{}", "[]"]),
    "arrow.fixed_shape_tensor": ("fsl4_i32", [
        '{"shape": [2, 2]}', '{"shape": [-1, -4]}', '{"shape": [4294967296, 1]}',
        '{"shape": [2, 2], "permutation": [0, 0]}', '{"shape": [2, 2], "dim_names": ["a"]}',
        '{"shape": [2, 2], "permutation": [5, 9]}', '{"shape": []}', '{"shape": [0, 3]}']),
    "arrow.variable_shape_tensor": ("struct_shape", [
        '{}', '{"uniform_shape": [null, 2]}', '{"permutation": [1, 0]}',
        '{"uniform_shape": [5, 5]}', '{"dim_names": ["a", "b", "c"]}']),
    "arrow.py_extension_type": ("binary", ["cos\ngetpid\n(tR."]),
    "arrow.parquet.variant": ("struct_nested", [""]),
    "pandas.period": ("int64", ['{"freq": "D"}', '{"freq": "bogus"}', "{}", "nope"]),
    "pandas.interval": ("struct_shape", ['{"subtype": "int64", "closed": "both"}',
                                         '{"subtype": "zzz", "closed": "x"}', "{}"]),
    "geoarrow.wkb": ("binary", ["{}", '{"crs": "EPSG:4326"}', "garbage"]),
    "geoarrow.point": ("fsl4_i32", ["{}"]),
    "polars.object": ("binary", [""]),
    "unknown.extension": (None, ["", "x"]),
}

PL_KEYS = ("_PL_CATEGORICAL2", "_PL_ENUM_VALUES2", "_PL_CATEGORICAL", "_PL_ENUM_VALUES",
           "_PL_FLAGS", "_PL_EMPTY_STRUCT", "_PL_STRUCTFIELDS", "_PL_ELEMENT",
           "ARROW:extension:name", "ARROW:extension:metadata", "PARQUET:field_id")
PL_VALUES = ("", ";", "0", "-1", "1;", "1;x", "1;x1;x", "2;x1;y", "1;x1;y", "99999999999;x",
             "18446744073709551616;", "0;0;u32;", "0;0;u8;", "0;0;u64;", "0;0;i128;",
             "1;1;u32;name", "9;9;u32;", "0;0;u32;" + "x" * 500, "a;b;c;d", "1", "255", "x",
             "\xff\xfe", "0;0;f64;", "3;abc3;abc", "5;ab")


HUGE_SHORT = {"null": 5, "empty_struct": 5, "ree": 2**31 - 7}


def huge_stream(buf: bytes, kind: str) -> bytes:
    """A one-column stream (the first column's name) of HUGE_SHORT[kind] rows that cost
    nothing: a run-end encoded column has one run (and is never materialized here)."""
    import pyarrow as pa

    schema = pa.ipc.open_stream(pa.py_buffer(buf)).schema
    name = schema[0].name if len(schema) else "x"
    n = HUGE_SHORT[kind]
    if kind == "ree":
        arr = pa.RunEndEncodedArray.from_arrays(pa.array([n], pa.int64()), pa.array([1]))
    elif kind == "null":
        arr = pa.nulls(n)
    else:
        arr = pa.array([{}] * n, pa.struct([]))
    table = pa.table({name: arr})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return bytes(sink.getvalue())


def rewrite(buf: bytes, spec: dict[str, Any]) -> bytes:
    """A pristine (pyarrow-written) stream re-written per ``spec``; parent side only."""
    import pyarrow as pa

    table = pa.ipc.open_stream(pa.py_buffer(buf)).read_all()
    cols = list(table.columns)
    fields = list(table.schema)
    smeta = dict(table.schema.metadata or {})
    rows = table.num_rows

    def md(f: Any) -> dict[bytes, bytes]:
        return dict(f.metadata or {})

    if cols and "subst" in spec:
        c = spec["subst"][0] % len(cols)
        arr = exotic(spec["subst"][1], rows)
        cols[c] = arr if isinstance(arr, pa.ChunkedArray) else pa.chunked_array([arr])
        fields[c] = pa.field(fields[c].name, cols[c].type, metadata=fields[c].metadata)
    if cols and "ext" in spec:
        c, name, meta = spec["ext"]
        c %= len(cols)
        if isinstance(cols[c].type, pa.BaseExtensionType):
            cols[c] = pa.chunked_array([ch.storage for ch in cols[c].chunks],
                                       cols[c].type.storage_type)
        m = md(fields[c])
        m[b"ARROW:extension:name"] = name.encode("utf-8", "surrogatepass")
        m[b"ARROW:extension:metadata"] = meta.encode("latin-1", "replace")
        fields[c] = pa.field(fields[c].name, cols[c].type, metadata=m)
    if cols and "fmeta" in spec:
        c, key, value = spec["fmeta"]
        c %= len(cols)
        m = md(fields[c])
        m[key.encode()] = value.encode("utf-8", "surrogatepass")
        fields[c] = fields[c].with_metadata(m)
    if "smeta" in spec:
        smeta[spec["smeta"][0].encode()] = spec["smeta"][1].encode("utf-8", "surrogatepass")
    schema = pa.schema(fields, metadata=smeta or None)
    table = pa.Table.from_arrays(cols, schema=schema)
    opts = pa.ipc.IpcWriteOptions(compression=spec.get("compress"),
                                  use_legacy_format=bool(spec.get("legacy")),
                                  emit_dictionary_deltas=bool(spec.get("deltas")))
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema, options=opts) as w:
        k = int(spec.get("chunks", 1))
        if k > 1 and rows > 1:
            for batch in table.to_batches(max_chunksize=max(1, math.ceil(rows / k))):
                w.write_batch(batch)
        else:
            w.write_table(table)
    return bytes(sink.getvalue())


# ---------------------------------------------------------------------------------------
# mutations: ops are JSON lists, chosen against the current state and applied in order


INTS = (0, 1, -1, 2, 7, 8, 255, 256, 2**15 - 1, 2**16, 2**31 - 1, 2**31, 2**32 - 1, 2**32,
        2**40, 2**53 + 1, 2**62, 2**63 - 1, 2**63, 2**64, -2**31, -2**63, -2**63 - 1, 10**30)


def _deep(depth: int) -> Any:
    x: Any = 0
    for _ in range(depth):
        x = [x]
    return x


JUNK: tuple[Any, ...] = (
    None, True, False, 0, 1, -1, 2**31, 2**63, 2**64, -2**63 - 1, 10**30, 0.5, -0.0, 1e308,
    float("nan"), float("inf"), float("-inf"), "", "x", "0", "-1", "nan", "\x00", "\ud800",
    "a" * 10_000, [], [0], [-1], [None], [[]], {}, {"k": "np"}, {"tuple": []},
    {"tuple": [{"tuple": [1]}]}, {"float": "nan"}, {"float": "1e999"}, {"k": "range"},
    _deep(MAX_JUNK_DEPTH), ["C", "F"], [2**63, 2**63], list(range(70)),
)

VOCAB: dict[str, tuple[Any, ...]] = {
    "dtype": ("|b1", "<i8", ">i8", "<f8", "<U3", "|S0", "|V0", "|V8", "<M8[ns]", "<m8[D]",
              "<M8", "|O", "O", "<c16", "<f16", ">U1", "<U2147483647", "|S2147483647",
              "|V2147483647", "(2,)i4", "i4,i4", "[('a','<i4')]", "<M8[1000000000Y]", "M8[as]",
              "<U1073741824", "float64", "int", "Int64", "boolean", "Float32", "UInt8",
              "string", "category", "b", "e", "g", "G", "|u1", "<u8", "V", "U", "S", "M8[generic]",
              "<M8[-1s]", "m8[2**63s]", "|V" + "9" * 20, "<U" + "9" * 20, "object", "void"),
    "k": ("np", "str", "arrow", "labels", "cat", "dttz", "masked", "range", "multi", "index",
          "bogus", None),
    "kind": ("frame", "series", "index", "table", "batch", "chunked", "array", "x"),
    "cls": ("Index", "RangeIndex", "MultiIndex", "DatetimeIndex", "TimedeltaIndex",
            "CategoricalIndex", "PeriodIndex", "IntervalIndex", "Foo"),
    "tz": ("UTC", "Europe/Paris", "+05:30", "+99:99", "-00:00", "dateutil//etc/passwd",
           "/etc/passwd", "Etc/GMT+14", "America/Argentina/Buenos_Aires", "zoneinfo/../x",
           "a" * 64, "posixrules", "right/UTC", "Factory", "EST5EDT", "tzlocal()", ""),
    "freq": ("D", "h", "min", "2D", "-1D", "0D", "1000000000000000000D", "W-MON", "ME",
             "QE-DEC", "YS", "B", "C", "BH", "CBMS", "ns", "us", "D" * 50, "15min", "W-FOO",
             "bogus", "", "1e9D", "9223372036854775807ns", "-9223372036854775808ns"),
    "order": ("C", "F", "A", "K", "c", ""),
    "as": ("string", "x"),
    "na": ("nan", "NA", None, "x"),
    "polars": ("frame", "series", "x"),
}
ADD_KEYS: dict[str, tuple[Any, ...]] = {
    "gaps": (0, 1, 2, 5, -1), "freq": VOCAB["freq"], "as": ("string",), "na": ("nan", "NA"),
    "order": ("F", "C"), "attrs": ({"a": 1}, [], "x"), "dup": (False, "no"),
    "multi": (True,), "tz": VOCAB["tz"], "ordered": (True, 2), "name": ("n", {"tuple": []}),
    "rows": (0, -1, 2**63), "chunks": (0, -1), "polars": ("frame", "series"),
    "shape": ([1], [-1]), "n": (0, -1, 2**40), "b": (0, [0, 1], 99),
}


def _walk(meta: Any) -> list[tuple[list[Any], Any]]:
    """(path, node) of every node down to depth 40, the root excluded."""
    out: list[tuple[list[Any], Any]] = []
    stack: list[tuple[list[Any], Any]] = [([], meta)]
    while stack:
        path, node = stack.pop()
        if path:
            out.append((path, node))
        if len(path) >= 40:
            continue
        if isinstance(node, dict):
            stack += [(path + [k], v) for k, v in node.items()]
        elif isinstance(node, list):
            stack += [(path + [i], v) for i, v in enumerate(node[:64])]
    out.sort(key=lambda pv: json.dumps(pv[0]))
    return out


def _parent(meta: Any, path: list[Any]) -> tuple[Any, Any] | None:
    node = meta
    for key in path[:-1]:
        if not (isinstance(node, dict) and isinstance(key, str) and key in node
                or isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node)):
            return None
        node = node[key]
    key = path[-1]
    if isinstance(node, dict) and isinstance(key, str) and key in node:
        return node, key
    if isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
        return node, key
    return None


def _copy(x: Any) -> Any:
    return json.loads(json.dumps(x))


def _streams(serializer: str, meta: Any, nbuf: int) -> list[int]:
    """Indices of the buffers that are Arrow IPC streams, by the (unmutated) meta."""
    if serializer in ("arrow", "polars"):
        return [0] if nbuf else []
    return sorted({node["b"] for _, node in _walk(meta) if isinstance(node, dict)
                   and node.get("k") == "arrow" and type(node.get("b")) is int
                   and 0 <= node["b"] < nbuf})


class State:
    def __init__(self, serializer: str, meta: dict[str, Any], buffers: list[bytes],
                 pristine: set[bytes]) -> None:
        self.serializer = serializer
        self.meta = _copy(meta)
        self.buffers = [bytearray(b) for b in buffers]
        self.streams = _streams(serializer, meta, len(buffers))
        self.pristine = pristine   # digests of streams pyarrow wrote from valid values

    def apply(self, op: list[Any]) -> None:
        try:
            getattr(self, "op_" + op[0])(*op[1:])
        except Exception:
            pass  # an op that does not fit (junk where it expects numbers, say): a no-op

    # meta
    def op_m_set(self, path: list[Any], value: Any) -> None:
        at = _parent(self.meta, path)
        if at is not None:
            at[0][at[1]] = _copy(value)

    def op_m_del(self, path: list[Any]) -> None:
        at = _parent(self.meta, path)
        if at is not None:
            del at[0][at[1]]

    def op_m_add(self, path: list[Any], key: Any, value: Any) -> None:
        node = self.meta if not path else None
        if path:
            at = _parent(self.meta, path)
            node = at[0][at[1]] if at is not None else None
        if isinstance(node, dict):
            node[str(key)] = _copy(value)
        elif isinstance(node, list):
            node.insert(int(key) % (len(node) + 1), _copy(value))

    def op_m_dup(self, path: list[Any]) -> None:
        at = _parent(self.meta, path)
        if at is not None and isinstance(at[0], list):
            at[0].insert(at[1], _copy(at[0][at[1]]))

    # buffers
    def _buf(self, i: int) -> bytearray:
        return self.buffers[i % len(self.buffers)]

    def op_b_flip(self, i: int, pos: int, mask: int) -> None:
        b = self._buf(i)
        if b:
            b[pos % len(b)] ^= mask

    def op_b_set(self, i: int, pos: int, data: str) -> None:
        b, raw = self._buf(i), bytes.fromhex(data)
        if len(b) >= len(raw):
            p = pos % (len(b) - len(raw) + 1)
            b[p:p + len(raw)] = raw

    def op_b_trunc(self, i: int, n: int) -> None:
        b = self._buf(i)
        del b[n % (len(b) + 1):]

    def op_b_ext(self, i: int, fill: str, count: int) -> None:
        self._buf(i).extend(bytes.fromhex(fill) * count)

    def op_b_ins(self, i: int, pos: int, data: str) -> None:
        b = self._buf(i)
        p = pos % (len(b) + 1)
        b[p:p] = bytes.fromhex(data)

    def op_b_del(self, i: int, pos: int, n: int) -> None:
        b = self._buf(i)
        if b:
            p = pos % len(b)
            del b[p:p + n]

    def op_b_swap(self, i: int, j: int) -> None:
        n = len(self.buffers)
        self.buffers[i % n], self.buffers[j % n] = self.buffers[j % n], self.buffers[i % n]

    def op_b_dup(self, i: int) -> None:
        self.buffers.append(bytearray(self._buf(i)))

    def op_b_drop(self, i: int) -> None:
        del self.buffers[i % len(self.buffers)]

    def op_b_new(self, data: str) -> None:
        self.buffers.append(bytearray.fromhex(data))

    # Arrow IPC streams
    def op_ipc_slot(self, i: int, name: str, k: int, value: int) -> None:
        b = self._buf(i)
        slots = [s for s in _Layout(bytes(b)).slots if s.name == name]
        if slots:
            s = slots[k % len(slots)]
            if s.size:
                _patch(b, s, value)
            else:  # a string: overwrite its bytes (same length)
                raw = (bytes.fromhex(f"{value & 0xFFFFFFFF:08x}") * (s.length // 4 + 1))
                b[s.pos:s.pos + s.length] = raw[:s.length]

    def op_ipc_str(self, i: int, name: str, k: int, text: str) -> None:
        b = self._buf(i)
        slots = [s for s in _Layout(bytes(b)).slots if s.name == name and not s.size]
        if slots:
            s = slots[k % len(slots)]
            raw = text.encode("utf-8", "surrogatepass")[:s.length]
            b[s.pos:s.pos + len(raw)] = raw

    def op_ipc_flip(self, i: int, region: str, k: int, pos: int, mask: int) -> None:
        b = self._buf(i)
        msgs = _Layout(bytes(b)).msgs
        if msgs:
            m = msgs[k % len(msgs)]
            lo, hi = m.meta if region == "meta" else m.body
            hi = min(hi, len(b))
            if hi > lo:
                b[lo + pos % (hi - lo)] ^= mask

    def op_ipc_len(self, i: int, length: int, every_node: bool) -> None:
        """Make one stream's batches ``length`` rows long, and the meta agree."""
        ix = i % len(self.buffers)
        b = self.buffers[ix]
        slots = _Layout(bytes(b)).slots
        first = True
        for s in slots:
            if s.name == "RecordBatch.length":
                _patch(b, s, length)
                first = True
            elif s.name == "RecordBatch.FieldNode.length" and (every_node or first):
                _patch(b, s, length)
                first = False
        self._lengths(ix, length)

    def _lengths(self, ix: int, length: int) -> None:
        if self.serializer in ("arrow", "polars"):
            self.meta["rows"] = length
            return
        for _, node in _walk(self.meta):
            if isinstance(node, dict) and node.get("k") == "arrow" and node.get("b") == ix:
                node["n"] = length
        index = self.meta.get("index")
        if self.meta.get("kind") in ("series", "frame") and isinstance(index, dict) \
                and index.get("k") == "range":
            index["stop"] = int(index.get("start", 0)) + length * int(index.get("step", 1))

    def op_ipc_huge(self, i: int, kind: str, length: int) -> None:
        """Replace a pristine stream by one column that Arrow lets be ``length`` rows long
        at no cost (null, empty struct, run-end encoded), written short and patched."""
        ix = i % len(self.buffers)
        if hashlib.sha256(self.buffers[ix]).digest() not in self.pristine:
            return
        short = HUGE_SHORT[kind]
        b = bytearray(huge_stream(bytes(self.buffers[ix]), kind))
        for s in _Layout(bytes(b)).slots:
            if s.name in ("RecordBatch.length", "RecordBatch.FieldNode.length") and \
                    int.from_bytes(b[s.pos:s.pos + 8], "little") == short:
                _patch(b, s, length)
        if kind == "ree":  # the run end, in the body
            for at in range(0, len(b) - 7, 8):
                if int.from_bytes(b[at:at + 8], "little") == short:
                    b[at:at + 8] = (length & (2**64 - 1)).to_bytes(8, "little")
        self.buffers[ix] = b
        self._lengths(ix, length)

    def op_ipc_rewrite(self, i: int, spec: dict[str, Any]) -> None:
        ix = i % len(self.buffers)
        if hashlib.sha256(self.buffers[ix]).digest() in self.pristine:
            self.buffers[ix] = bytearray(rewrite(bytes(self.buffers[ix]), spec))


def _interesting(rng: random.Random, orig: int | None = None) -> int:
    if orig is not None and rng.random() < 0.4:
        return rng.choice([orig - 1, orig + 1, -orig, orig * 2, orig // 2, orig + 8,
                           orig * 1000, orig - 8])
    return rng.choice(INTS) if rng.random() < 0.85 else rng.randrange(-2**40, 2**40)


class Mutator:
    def __init__(self, rng: random.Random, seeds: list[Seed]) -> None:
        self.rng = rng
        self.seeds = seeds
        self.subtrees: dict[str, list[Any]] = {}
        for s in seeds:
            for _, node in _walk(s.meta):
                if isinstance(node, dict) and "k" in node:
                    self.subtrees.setdefault(s.serializer, []).append(node)

    def meta_op(self, st: State) -> list[Any] | None:
        rng = self.rng
        nodes = _walk(st.meta)
        r = rng.random()
        if not nodes or r < 0.08:
            key = rng.choice(sorted(ADD_KEYS))
            dicts = [[]] + [p for p, v in nodes if isinstance(v, dict)]
            return ["m_add", rng.choice(dicts), key, rng.choice(ADD_KEYS[key])]
        path, value = rng.choice(nodes)
        key = path[-1]
        if r < 0.16:
            return ["m_del", path]
        if r < 0.22 and isinstance(key, int):
            return ["m_dup", path]
        if r < 0.30 and self.subtrees.get(st.serializer):
            return ["m_set", path, rng.choice(self.subtrees[st.serializer])]
        if isinstance(key, str) and key in VOCAB and rng.random() < 0.6:
            return ["m_set", path, rng.choice(VOCAB[key])]
        if isinstance(value, (int, float)) and not isinstance(value, bool) \
                and rng.random() < 0.7:
            v = _interesting(rng, int(value) if math.isfinite(value) else 0)
            return ["m_set", path, float(v) if rng.random() < 0.1 else v]
        if isinstance(value, str) and rng.random() < 0.3:
            return ["m_set", path, value[:-1] if value and rng.random() < 0.5 else value + "x"]
        return ["m_set", path, rng.choice(JUNK)]

    def buffer_op(self, st: State) -> list[Any] | None:
        rng = self.rng
        if not st.buffers:
            return ["b_new", rng.choice(["", "00" * 8, "ff" * 3])]
        i = rng.randrange(len(st.buffers))
        n = len(st.buffers[i])
        r = rng.random()
        pos = rng.randrange(n) if n and rng.random() < 0.7 else rng.randrange(max(1, min(n, 64)))
        if r < 0.25:
            return ["b_flip", i, pos, 1 << rng.randrange(8) if rng.random() < 0.7
                    else rng.randrange(1, 256)]
        if r < 0.45:
            size = rng.choice([1, 2, 4, 8])
            v = _interesting(rng) & ((1 << 8 * size) - 1)
            return ["b_set", i, pos - pos % size, v.to_bytes(size, "little").hex()]
        if r < 0.55:
            return ["b_trunc", i, rng.choice([0, 1, n - 1, n // 2, n - 8, rng.randrange(n + 1)])]
        if r < 0.62:
            return ["b_ext", i, rng.choice(["00", "ff", "41", "ffffffff"]),
                    rng.choice([1, 7, 8, 64, 4096, 1 << 16])]
        if r < 0.68:
            data = bytes(rng.randrange(256) for _ in range(rng.choice([1, 4, 8])))
            return ["b_ins", i, pos, data.hex()]
        if r < 0.73:
            return ["b_del", i, pos, rng.choice([1, 4, 8, 64])]
        if r < 0.80 and len(st.buffers) > 1:
            return ["b_swap", i, rng.randrange(len(st.buffers))]
        if r < 0.86:
            return ["b_dup", i]
        if r < 0.91:
            return ["b_drop", i]
        if r < 0.95:
            return ["b_new", rng.choice(["", "00", "00" * 8, "ffffffff" * 4])]
        other = rng.choice(self.seeds)
        if other.buffers and len(other.buffers[0]) < 65536:
            return ["b_new", rng.choice(other.buffers).hex()]
        return None

    def ipc_op(self, st: State) -> list[Any] | None:
        rng = self.rng
        live = [i for i in st.streams if i < len(st.buffers)]
        if not live:
            return None
        i = rng.choice(live)
        b = bytes(st.buffers[i])
        r = rng.random()
        if r < 0.05 and hashlib.sha256(b).digest() in st.pristine:
            return ["ipc_huge", i, rng.choice(sorted(HUGE_SHORT)),
                    rng.choice([2**24, 2**26, 2**31, 2**32 + 1, 2**40, 2**50, 2**62,
                                2**63 - 1])]
        if r < 0.10:
            return ["ipc_len", i, rng.choice([2**24, 2**31 - 1, 2**31, 2**32 + 1, 2**40, 2**62,
                                              2**63 - 1, 10**9, 10**12]), rng.random() < 0.5]
        layout = _Layout(b)
        if r < 0.25 and layout.msgs:
            return ["ipc_flip", i, rng.choice(["meta", "meta", "body"]),
                    rng.randrange(len(layout.msgs)), rng.randrange(1 << 20),
                    1 << rng.randrange(8) if rng.random() < 0.7 else rng.randrange(1, 256)]
        if not layout.slots:
            return None
        names = sorted({s.name for s in layout.slots})
        name = rng.choice(names)
        slots = [s for s in layout.slots if s.name == name]
        k = rng.randrange(len(slots))
        s = slots[k]
        if s.size == 0:
            text = rng.choice(["", "\x00", "\xff", "UTC", "+99:99", "/etc/passwd",
                               "dateutil//etc/passwd", "_PL_CATEGORICAL2", "_PL_ENUM_VALUES2",
                               "ARROW:extension:name", "arrow.uuid", "_POLARS_PYTHON_OBJECT",
                               "9;", "0;0;u64;", "\ud800", "x" * 64])
            return ["ipc_str", i, name, k, text]
        orig = int.from_bytes(b[s.pos:s.pos + s.size], "little", signed=s.size > 1)
        if name in ("BodyCompression.codec", "BodyCompression.method", "Field.type_type",
                    "Message.header_type") or s.size == 1:
            return ["ipc_slot", i, name, k, rng.choice([0, 1, 2, 3, 4, 5, 7, 14, 22, 26, 27,
                                                        127, 128, 255, orig ^ 1])]
        if s.size == 2:
            return ["ipc_slot", i, name, k, rng.choice([0, 1, 2, 3, 4, 5, -1, 32767, -32768,
                                                        orig + 1, orig - 1])]
        return ["ipc_slot", i, name, k, _interesting(rng, orig)]

    def rewrite_op(self, st: State) -> list[Any] | None:
        rng = self.rng
        live = [i for i in st.streams if i < len(st.buffers)
                and hashlib.sha256(st.buffers[i]).digest() in st.pristine]
        if not live:
            return None
        spec: dict[str, Any] = {}
        for _ in range(rng.choice([1, 1, 2, 3])):
            r = rng.random()
            col = rng.randrange(32)
            if r < 0.30:
                spec["subst"] = [col, rng.choice(EXOTIC)]
            elif r < 0.55:
                name = rng.choice(sorted(EXT_NAMES))
                storage, metas = EXT_NAMES[name]
                meta = rng.choice(metas) if rng.random() < 0.8 else rng.choice(
                    ["", "{", "null", "\xff" * 3, "x" * 5000])
                if storage and rng.random() < 0.8:
                    spec["subst"] = [col, storage]
                spec["ext"] = [col, name, meta]
            elif r < 0.72:
                spec["fmeta"] = [col, rng.choice(PL_KEYS), rng.choice(PL_VALUES)]
            elif r < 0.77:
                spec["smeta"] = [rng.choice(["pandas", "_PL_FLAGS", "ARROW:schema", "x"]),
                                 rng.choice(["", "{}", "{\"columns\": 5}", "\xff", "[]"])]
            elif r < 0.87:
                spec["compress"] = rng.choice(["lz4", "zstd"])
            elif r < 0.95:
                spec["chunks"] = rng.choice([2, 3, 5])
                spec["deltas"] = rng.random() < 0.5
            else:
                spec["legacy"] = True
        return ["ipc_rewrite", rng.choice(live), spec]

    def case(self, base: int, seed: Seed, prior: list[list[Any]], pristine: set[bytes]
             ) -> Case:
        rng = self.rng
        st = State(seed.serializer, seed.meta, seed.buffers, pristine)
        for op in prior:
            st.apply(op)
        ops = list(prior)
        if st.streams and rng.random() < (0.5 if seed.serializer in ("arrow", "polars")
                                          else 0.3):
            op = self.rewrite_op(st)
            if op is not None:
                st.apply(op)
                ops.append(op)
        arrow = seed.serializer in ("arrow", "polars")
        p_ipc = (0.6 if arrow else 0.35) if st.streams else 0.0
        p_meta = p_ipc + (1 - p_ipc) * (0.5 if arrow else 0.62)
        for _ in range(rng.choice([1, 1, 1, 2, 2, 3, 4, 6])):
            r = rng.random()
            if r < p_ipc:
                op = self.ipc_op(st)
            elif r < p_meta:
                op = self.meta_op(st)
            else:
                op = self.buffer_op(st)
            if op is None:
                continue
            st.apply(op)
            if sum(len(b) for b in st.buffers) > MAX_INPUT:
                break
            ops.append(op)
        view = rng.choice(["bytes", "bytes", "memoryview", "bytearray"])
        mode = rng.choice(["trusted", "untrusted"])
        return materialize(seed, base, ops, view, pristine, mode)


def materialize(seed: Seed, base: int, ops: list[list[Any]], view: str,
                pristine: set[bytes], mode: str = "trusted") -> Case:
    st = State(seed.serializer, seed.meta, seed.buffers, pristine)
    for op in ops:
        st.apply(op)
    return Case(seed.serializer, seed.label, base, ops, view, st.meta,
                [bytes(b[:MAX_INPUT]) for b in st.buffers], mode)


# ---------------------------------------------------------------------------------------
# the child: warm up, limit itself, run a batch of cases


def write_cases(path: Path, cases: list[Case]) -> None:
    with open(path, "wb") as f:
        for c in cases:
            head = json.dumps({"s": c.serializer, "meta": c.meta, "view": c.view,
                               "mode": c.mode, "sizes": [len(b) for b in c.buffers]}).encode()
            f.write(struct.pack("<I", len(head)) + head)
            for b in c.buffers:
                f.write(b)


def read_cases(path: Path) -> list[tuple[str, dict[str, Any], str, str, list[bytes]]]:
    data = path.read_bytes()
    out, pos = [], 0
    while pos < len(data):
        (n,) = struct.unpack_from("<I", data, pos)
        head = json.loads(data[pos + 4:pos + 4 + n])
        pos += 4 + n
        bufs = []
        for size in head["sizes"]:
            bufs.append(data[pos:pos + size])
            pos += size
        out.append((head["s"], head["meta"], head["view"], head.get("mode", "trusted"), bufs))
    return out


def _status(field_name: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _touch(value: Any) -> None:
    """Use the loaded value as a user would first: print it."""
    repr(value)
    if hasattr(value, "__len__"):
        len(value)


_EVENTS: list[str] = []
_WATCH = {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
          "os.fork", "pickle.find_class", "marshal.loads", "ctypes.dlopen", "os.startfile"}
_ACTIVE = [False]


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _ACTIVE[0] and (event in _WATCH or event == "open" and isinstance(args[0], str)
                       and not args[0].startswith((sys.prefix, sys.base_prefix,
                                                   "/usr/share/zoneinfo", "/proc/self"))):
        _EVENTS.append(f"{event} {str(args[0])[:120]}")


def _chain(e: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    x: BaseException | None = e
    while x is not None and x not in seen and len(seen) < 20:
        seen.append(x)
        x = x.__cause__ or x.__context__
    return seen


def child_main(batch: Path, progress: Path, results: Path, deadline: float) -> int:
    import faulthandler

    faulthandler.enable()
    faulthandler.register(signal.SIGXCPU, chain=True)
    _ensure_src()
    import numpy  # noqa: F401
    import pandas  # noqa: F401
    import polars  # noqa: F401
    import pyarrow  # noqa: F401

    from hibernate import serializers

    try:  # loads as from an untrusted file (data_only): Arrow types allow-listed
        from hibernate.serializers._ipc import untrusted
    except ImportError:
        untrusted = None
    for seed in corpus(small=True):  # warm up: imports, thread pools, caches
        _touch(serializers.get(seed.serializer).load(_copy(seed.meta), seed.buffers))
    sys.addaudithook(_audit)
    limit = _status("VmSize") + MEMORY_HEADROOM
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    cases = read_cases(batch)
    hard = int(_cpu()) + CASE_CPU * (len(cases) + 2) + 30
    resource.setrlimit(resource.RLIMIT_CPU, (hard, hard))
    pfd = os.open(progress, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    with open(results, "w") as out:
        out.write(json.dumps({"limit": limit}) + "\n")
        out.flush()
        for i, (ser, meta, view, mode, bufs) in enumerate(cases):
            if time.time() > deadline:
                break
            os.pwrite(pfd, f"{i:10d}\n".encode(), 0)
            os.write(2, f"\n=== case {i} ===\n".encode())
            buffers: list[Any] = (bufs if view == "bytes" else
                                  [memoryview(b) for b in bufs] if view == "memoryview" else
                                  [bytearray(b) for b in bufs])
            try:
                with open("/proc/self/clear_refs", "w") as f:
                    f.write("5")
            except OSError:
                pass
            rss = _status("VmRSS")
            soft = min(hard, int(_cpu()) + 1 + CASE_CPU)
            resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
            t0 = time.perf_counter()
            rec: dict[str, Any] = {"i": i, "o": "ok"}
            stage = "load"
            _EVENTS.clear()
            _ACTIVE[0] = True
            try:
                if mode == "untrusted" and untrusted is not None:
                    with untrusted(True):
                        value = serializers.get(ser).load(meta, buffers)
                else:
                    value = serializers.get(ser).load(meta, buffers)
                stage = "use"
                try:
                    _touch(value)
                except Exception as e:
                    rec["use_error"] = f"{type(e).__name__}: {str(e)[:200]}"
                    if any(isinstance(x, MemoryError) for x in _chain(e)):
                        raise
                rec["type"] = type(value).__name__
                del value
            except KeyboardInterrupt:
                raise
            except BaseException as e:
                chain = _chain(e)
                rec["t"] = f"{type(e).__module__}.{type(e).__qualname__}"
                rec["m"] = str(e)[:300]
                rec["stage"] = stage
                if any(isinstance(x, MemoryError) for x in chain):
                    rec["o"] = "memory"
                    rec["via"] = [type(x).__name__ for x in chain]
                elif not isinstance(e, Exception):
                    rec["o"] = "panic"
                else:
                    rec["o"] = "error" if stage == "load" else "ok"
            finally:
                _ACTIVE[0] = False
                buffers = []
            if _EVENTS:
                rec["events"] = _EVENTS[:10]
                if any(ev.split()[0] in _WATCH for ev in _EVENTS):
                    rec["o"] = "code"
                elif rec["o"] in ("ok", "error"):
                    rec["o"] = "file"
            rec["sec"] = round(time.perf_counter() - t0, 4)
            rec["peak"] = max(0, _status("VmHWM") - rss)
            out.write(json.dumps(rec) + "\n")
            out.flush()
    os.pwrite(pfd, b"      done\n", 0)
    return 0


# ---------------------------------------------------------------------------------------
# the parent: run cases in children, classify, minimize, report


@dataclass
class Outcome:
    o: str                      # ok, error, crash, panic, memory, hang, code
    detail: str = ""            # exception type and message, or signal
    stage: str = "load"
    peak: int = 0
    sec: float = 0.0
    stderr: str = ""
    events: list[str] = field(default_factory=list)
    use_error: str = ""

    @property
    def finding(self) -> bool:
        return self.o in FINDINGS

    def signature(self, serializer: str, mode: str = "trusted") -> str:
        where = ""
        m = re.search(r"panicked at ([^\n]+?):\d+:\d+", self.stderr)
        if m:
            where = m.group(1)
        elif self.o in ("crash", "hang"):
            frames = re.findall(r'File "([^"]+)", line (\d+) in (\S+)', self.stderr)
            if frames:
                f = frames[0]  # faulthandler prints the innermost frame first
                where = f"{Path(f[0]).name}:{f[1]} {f[2]}"
        text = re.sub(r"0x[0-9a-f]+|\d+", "N", self.detail)[:90]
        return (f"{self.o}{'-use' if self.stage == 'use' else ''} {serializer} ({mode}): "
                f"{text} {where}")


@dataclass
class Finding:
    signature: str
    cls: str
    serializer: str
    count: int
    example: Case
    outcome: Outcome
    path: Path | None = None
    minimized: Case | None = None
    min_path: Path | None = None


@dataclass
class Stats:
    tried: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    findings: dict[str, Finding] = field(default_factory=dict)
    children: int = 0
    peak: int = 0
    peak_case: str = ""
    peak_limit: int = 0
    amplification: list[tuple[float, int, int, str]] = field(default_factory=list)
    events: Counter[str] = field(default_factory=Counter)
    src_changes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    errors: Counter[str] = field(default_factory=Counter)
    harness: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        lines = [f"{sum(self.tried.values())} inputs in {self.seconds:.0f} s, "
                 f"{self.children} child processes"]
        for s in SERIALIZERS:
            counts = {o: n for (ser, o), n in sorted(self.outcomes.items()) if ser == s}
            lines.append(f"  {s:7} {self.tried[s]:6} tried: " +
                         ", ".join(f"{o} {n}" for o, n in counts.items()))
        lines.append(f"  peak memory of one load (VmHWM growth): {self.peak / 2**20:.1f} MiB"
                     f" ({self.peak_case}); child RLIMIT_AS {self.peak_limit / 2**20:.0f} MiB")
        for ratio, peak, size, what in sorted(self.amplification, reverse=True)[:3]:
            lines.append(f"  amplification {ratio:.0f}x: {peak / 2**20:.1f} MiB from "
                         f"{size} bytes ({what})")
        for ev, n in self.events.most_common(8):
            lines.append(f"  event during load x{n}: {ev}")
        for what, n in self.harness.most_common(5):
            lines.append(f"  harness error x{n} (mutant skipped): {what}")
        for change in self.src_changes:
            lines.append(f"  src changed: {change}")
        by_class = Counter(f.cls for f in self.findings.values())
        lines.append(f"  findings: {len(self.findings)} distinct "
                     f"({', '.join(f'{c} {n}' for c, n in sorted(by_class.items())) or 'none'})")
        for f in sorted(self.findings.values(), key=lambda f: (f.cls, -f.count)):
            lines.append(f"    [{f.cls}] x{f.count} {f.signature}")
            lines.append(f"        {f.min_path or f.path}")
        return "\n".join(lines)


def _src_digest() -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:12]
            for p in sorted((SRC / "hibernate" / "serializers").glob("*.py"))}


class Runner:
    """Runs cases in child processes; a child that dies is replaced and goes on after the
    case that killed it."""

    def __init__(self, workdir: Path, stats: Stats) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.stats = stats

    def run(self, cases: list[Case], deadline: float | None = None) -> list[Outcome | None]:
        results: list[Outcome | None] = [None] * len(cases)
        start = 0
        while start < len(cases):
            done, fatal = self._child(cases[start:], deadline)
            for i, o in done.items():
                results[start + i] = o
            if fatal is None:
                break
            i, outcome = fatal
            results[start + i] = outcome
            start += i + 1
            if deadline is not None and time.time() > deadline:
                break
        return results

    def _child(self, cases: list[Case], deadline: float | None
               ) -> tuple[dict[int, Outcome], tuple[int, Outcome] | None]:
        w = self.workdir
        batch, progress, results, err = (w / "batch.bin", w / "progress", w / "results.jsonl",
                                         w / "stderr")
        write_cases(batch, cases)
        for p in (progress, results):
            p.write_bytes(b"")
        env = {**os.environ, "RUST_BACKTRACE": "0", "PYTHONFAULTHANDLER": "1",
               "POLARS_VERBOSE": "0"}
        until = deadline if deadline is not None else time.time() + 10 * 365 * 86400
        with open(err, "wb") as ef:
            proc = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "--child", str(batch),
                 str(progress), str(results), repr(until)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=ef, env=env,
                cwd=str(w))
            self.stats.children += 1
            current, since, killed = -1, time.monotonic(), False
            startup = time.monotonic()
            while proc.poll() is None:
                time.sleep(0.05)
                text = progress.read_bytes().strip()
                now = time.monotonic()
                if text and text != b"done":
                    idx = int(text)
                    if idx != current:
                        current, since = idx, now
                    elif now - since > CASE_WALL:
                        killed = True
                        self._kill(proc)
                elif current < 0 and now - startup > 120:
                    self._kill(proc)
                    raise RuntimeError("a fuzz child did not start:\n" +
                                       err.read_text(errors="replace")[-3000:])
            rc = proc.returncode
        done: dict[int, Outcome] = {}
        limit = 0
        for line in results.read_text().splitlines():
            rec = json.loads(line)
            if "limit" in rec:
                limit = rec["limit"]
                continue
            detail = f"{rec.get('t', '')}: {rec.get('m', '')}" if "t" in rec else ""
            done[rec["i"]] = Outcome(rec["o"], detail, rec.get("stage", "load"), rec["peak"],
                                     rec["sec"], events=rec.get("events", []),
                                     use_error=rec.get("use_error", ""))
        self.stats.peak_limit = max(self.stats.peak_limit, limit)
        stderr = err.read_text(errors="replace")
        segments = dict(re.findall(r"\n=== case (\d+) ===\n(.*?)(?=\n=== case \d+ ===\n|\Z)",
                                   stderr, re.S))
        for i, o in done.items():
            o.stderr = segments.get(str(i), "")[-4000:]
        if rc == 0 and not killed:
            return done, None
        text = progress.read_bytes().strip()
        if not text or text == b"done" or limit == 0:
            raise RuntimeError(f"a fuzz child failed before its cases (rc {rc}):\n"
                               + stderr[-3000:])
        idx = int(text)
        if idx in done:  # died after recording the case (a finalizer, say)
            idx_outcome = done.pop(idx)
            idx_outcome.o, idx_outcome.detail = "crash", f"after the case: rc {rc}"
            return done, (idx, idx_outcome)
        seg = segments.get(str(idx), "")[-4000:]
        if killed:
            o = Outcome("hang", f"more than {CASE_WALL:.0f} s wall time", stderr=seg)
        elif rc == -signal.SIGXCPU:
            o = Outcome("hang", f"more than {CASE_CPU} s CPU (SIGXCPU)", stderr=seg)
        elif re.search(r"memory allocation of \d+ bytes failed|bad_alloc|out of memory|"
                       r"Cannot allocate memory|MemoryError", seg, re.I):
            o = Outcome("memory", f"child died: rc {rc}: "
                        + (re.findall(r"memory allocation of \d+ bytes failed|bad_alloc|"
                                      r"MemoryError|out of memory", seg, re.I) or [""])[0],
                        stderr=seg)
        elif rc < 0:
            o = Outcome("crash", f"killed by {signal.Signals(-rc).name}", stderr=seg)
        else:
            o = Outcome("crash", f"exited with {rc}", stderr=seg)
        return done, (idx, o)

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(signal.SIGABRT)  # faulthandler prints where it was
        try:
            proc.wait(3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Fuzzer:
    def __init__(self, workdir: Path, seed: int, out: Path | None) -> None:
        self.stats = Stats()
        self.runner = Runner(workdir / "child", self.stats)
        self.rng = random.Random(seed)
        self.seeds = corpus()
        import pyarrow as pa  # noqa: F401  (the parent re-writes pristine streams)

        self.pristine = {hashlib.sha256(b).digest() for s in self.seeds
                         for i in _streams(s.serializer, s.meta, len(s.buffers))
                         for b in [s.buffers[i]]}
        self.mutator = Mutator(self.rng, self.seeds)
        self.by_ser = {s: [i for i, x in enumerate(self.seeds) if x.serializer == s]
                       for s in SERIALIZERS}
        self.evolved: dict[str, list[tuple[int, list[list[Any]]]]] = {s: [] for s in SERIALIZERS}
        self.seen: set[str] = set()
        self.out = out
        self.src = _src_digest()

    def generate(self, n: int) -> list[Case]:
        cases = []
        for _ in range(n):
            ser = self.rng.choice(SERIALIZERS)
            pool = self.evolved[ser]
            if pool and self.rng.random() < 0.3:
                base, prior = self.rng.choice(pool)
            else:
                base, prior = self.rng.choice(self.by_ser[ser]), []
            try:
                cases.append(self.mutator.case(base, self.seeds[base], prior, self.pristine))
            except Exception as e:  # a harness bug: counted, the mutant skipped
                self.stats.harness[f"{type(e).__name__}: {e}"[:120]] += 1
        return cases

    def self_check(self) -> list[Case]:
        return [materialize(s, i, [], "bytes", self.pristine) for i, s in enumerate(self.seeds)]

    def account(self, cases: list[Case], outcomes: list[Outcome | None],
                check: bool = False) -> list[tuple[Case, Outcome]]:
        new: list[tuple[Case, Outcome]] = []
        st = self.stats
        for case, o in zip(cases, outcomes):
            if o is None:
                continue
            if check and o.o not in ("ok",) and not o.finding:
                o = Outcome("self-check", f"an unmutated value did not load: {o.detail}",
                            stderr=o.stderr)
            st.tried[case.serializer] += 1
            st.outcomes[(case.serializer, o.o + ("-use" if o.stage == "use" and o.finding
                                                 else ""))] += 1
            size = sum(len(b) for b in case.buffers)
            if o.peak > st.peak:
                st.peak, st.peak_case = o.peak, f"{case.serializer}: {case.label}"
            if o.peak > 16 << 20:
                st.amplification.append((o.peak / max(size, 1), o.peak, size,
                                         f"{case.serializer}: {case.label}"))
                st.amplification = sorted(st.amplification, reverse=True)[:10]
            for ev in o.events:
                st.events[f"{case.serializer}: {ev}"] += 1
            if o.o == "error":
                st.errors[f"{case.serializer}: {re.sub(r'[0-9]+', 'N', o.detail)[:90]}"] += 1
            if o.use_error:
                st.outcomes[(case.serializer, "ok, printing raised")] += 1
            sig = o.signature(case.serializer, case.mode)
            if o.finding:
                f = st.findings.get(sig)
                if f is None:
                    f = st.findings[sig] = Finding(sig, o.o, case.serializer, 0, case, o)
                    f.path = self.save(case, o, "finding")
                    new.append((case, o))
                f.count += 1
            elif sig not in self.seen and case.ops:
                self.seen.add(sig)  # a new kind of outcome: mutate it further
                pool = self.evolved[case.serializer]
                entry = (case.base, case.ops)
                if len(pool) < 300:
                    pool.append(entry)
                else:
                    pool[self.rng.randrange(len(pool))] = entry
        return new

    def save(self, case: Case, o: Outcome, prefix: str) -> Path | None:
        if self.out is None:
            return None
        self.out.mkdir(parents=True, exist_ok=True)
        rec = case.record()
        rec["outcome"] = {"class": o.o, "stage": o.stage, "detail": o.detail,
                          "stderr": o.stderr[-2000:], "events": o.events}
        blob = json.dumps(rec, indent=1)
        digest = hashlib.sha256(blob.encode()).hexdigest()[:10]
        path = self.out / f"{prefix}-{o.o}-{case.serializer}-{digest}.json"
        path.write_text(blob)
        return path

    def minimize(self, case: Case, o: Outcome, budget: float) -> Case:
        """Drop ops (one at a time, then the view) while the same finding comes back."""
        sig = o.signature(case.serializer, case.mode)
        seed = self.seeds[case.base]
        end = time.monotonic() + budget
        best = case
        progress = True
        while progress and time.monotonic() < end:
            progress = False
            smaller = [best.ops[:k] + best.ops[k + 1:] for k in range(len(best.ops))]
            for k, op in enumerate(best.ops):  # a re-write: one part of its spec less
                if op[0] == "ipc_rewrite" and len(op[2]) > 1:
                    smaller += [best.ops[:k] + [[op[0], op[1], {x: y for x, y in op[2].items()
                                                                if x != key}]] + best.ops[k + 1:]
                                for key in op[2]]
            cands = [materialize(seed, best.base, ops, best.view, self.pristine, best.mode)
                     for ops in smaller]
            if best.view != "bytes":
                cands.append(materialize(seed, best.base, best.ops, "bytes", self.pristine,
                                         best.mode))
            if not cands:
                break
            outs = self.runner.run(cands)
            for c, co in zip(cands, outs):
                if co is not None and co.signature(c.serializer, c.mode) == sig:
                    best, progress = c, True
                    break
        return best

    def check_src(self, when: str) -> None:
        now = _src_digest()
        if now != self.src:
            changed = sorted(n for n in set(now) | set(self.src) if now.get(n) != self.src.get(n))
            self.stats.src_changes.append(f"{when}: serializers/{', '.join(changed)}")
            self.src = now


def run(seconds: float, workdir: Path, seed: int = 0, out: Path | None = None,
        minimize: bool = True, progress: bool = False, batch: int = BATCH) -> Stats:
    """Fuzz for about ``seconds`` (unmutated values first); return Stats (findings in
    ``.findings``, saved under ``out`` when given)."""
    t0 = time.monotonic()
    end = time.time() + seconds
    fz = Fuzzer(workdir, seed, out)
    st = fz.stats
    checks = fz.self_check()
    fz.account(checks, fz.runner.run(checks, end + 60), check=True)
    shown = time.monotonic()
    rounds = 0
    while time.time() < end:
        rounds += 1
        fz.check_src(f"after {time.monotonic() - t0:.0f} s (batch {rounds})")
        cases = fz.generate(batch)
        new = fz.account(cases, fz.runner.run(cases, end))
        if minimize:
            for case, o in new:
                f = st.findings[o.signature(case.serializer, case.mode)]
                if case.ops and time.time() < end:
                    small = fz.minimize(case, o, budget=min(120.0, max(5.0, end - time.time())))
                    f.minimized = small
                    f.min_path = fz.save(small, o, "minimal")
        st.seconds = time.monotonic() - t0
        if progress and time.monotonic() - shown > 30:
            shown = time.monotonic()
            print(f"  {sum(st.tried.values())} inputs, {len(st.findings)} distinct findings, "
                  f"{st.seconds:.0f} s", flush=True)
    fz.check_src("at the end")
    st.seconds = time.monotonic() - t0
    return st


def replay(path: Path, workdir: Path) -> tuple[Case, Outcome]:
    rec = json.loads(path.read_text())
    case = Case(rec["serializer"], rec.get("seed", "?"), rec.get("base", 0), rec.get("ops", []),
                rec.get("view", "bytes"), rec["meta"],
                [base64.b64decode(b) for b in rec["buffers"]], rec.get("mode", "trusted"))
    outcome = Runner(workdir, Stats()).run([case])[0]
    assert outcome is not None
    return case, outcome


def describe(case: Case) -> str:
    ops = "\n".join(f"    {json.dumps(op)[:300]}" for op in case.ops) or "    (none)"
    meta = json.dumps(case.meta)
    return (f"  serializer {case.serializer} ({case.mode}); value: {case.label}; "
            f"buffers as {case.view}\n"
            f"  ops:\n{ops}\n  meta: {meta[:1500]}\n"
            f"  buffers: {[len(b) for b in case.buffers]} bytes")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return child_main(Path(argv[1]), Path(argv[2]), Path(argv[3]), float(argv[4]))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--out", type=Path, default=Path("fuzz-out"),
                    help="where findings are written (default ./fuzz-out)")
    ap.add_argument("--replay", type=Path, help="run one saved case in a child and exit")
    ap.add_argument("--no-minimize", action="store_true")
    ap.add_argument("--verbose", action="store_true", help="also list the commonest errors")
    args = ap.parse_args(argv)
    _ensure_src()
    with tempfile.TemporaryDirectory(prefix="hib-decoders-") as tmp:
        if args.replay:
            case, o = replay(args.replay, Path(tmp))
            print(describe(case))
            print(f"outcome: {o.o} ({o.stage}) {o.detail}")
            if o.stderr.strip():
                print("stderr:\n" + o.stderr.strip()[-2000:])
            return 1 if o.finding else 0
        print(f"seed {args.seed}, {args.minutes} min; findings go to {args.out}", flush=True)
        st = run(args.minutes * 60, Path(tmp), args.seed, out=args.out,
                 minimize=not args.no_minimize, progress=True)
        print(st.summary())
        if args.verbose:
            for text, n in st.errors.most_common(80):
                print(f"  {n:6}  {text}")
        for f in st.findings.values():
            print(f"\n[{f.cls}] {f.signature}\n{describe(f.minimized or f.example)}\n"
                  f"  outcome: {f.outcome.detail}")
        return 1 if st.findings else 0


if __name__ == "__main__":
    sys.exit(main())
