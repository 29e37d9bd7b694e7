"""Every serializer in the registry runs the SerializerTests contract (tests/conformance.py).

Each class names its serializer, builds representative samples (empty, non-contiguous,
nulls, nested, unusual dtypes) fresh on every call, and says what "equal" means: exact,
bit for bit where the type allows. Libraries are imported inside ``samples`` so that a
fresh process imports only the one it checks.
"""

from __future__ import annotations

import datetime
import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

pytest.register_assert_rewrite("conformance")  # readable failures from the shared bases

from conformance import SerializerTests  # noqa: E402


class TestNumpy(SerializerTests):
    name = "numpy"
    optional_meta = frozenset({"order"})

    def samples(self) -> dict[str, object]:
        np = pytest.importorskip("numpy")
        return {
            "matrix": np.arange(24.0).reshape(4, 6),
            "fortran": np.asfortranarray(np.arange(12, dtype=np.int32).reshape(3, 4)),
            "strided": np.arange(40.0)[::3],
            "transposed_slice": np.arange(30).reshape(5, 6)[1:, ::2].T,
            "empty": np.empty(0, np.float32),
            "empty_2d": np.zeros((3, 0), np.int16),
            "scalar": np.array(7.5),
            "flags": np.array([True, False, True]),
            "times": np.array(["2024-01-01T00:00", "NaT"], "datetime64[ns]"),
            "durations": np.array([1, -2], "timedelta64[s]"),
            "complexes": np.array([1 + 2j, complex(np.nan, -0.0)]),
            "text": np.array(["ab", "ünï", ""], "U3"),
            "raw": np.array([b"a", b"bcd"], "S3"),
            "big_endian": np.arange(5, dtype=">i4"),
            "void": np.frombuffer(b"abcdef", "V3").copy(),
            "specials": np.array([np.nan, -0.0, np.inf, -np.inf]),
        }

    def assert_equal(self, got: Any, want: Any) -> None:
        import numpy as np

        assert type(got) is np.ndarray and isinstance(want, np.ndarray)
        assert (got.dtype, got.shape) == (want.dtype, want.shape)
        assert got.tobytes() == want.tobytes()  # bit for bit: NaN payloads, -0.0
        if want.flags.f_contiguous and not want.flags.c_contiguous:
            assert got.flags.f_contiguous, "Fortran order lost"

    def hostile_metas(self, meta: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], bool]]:
        shape = meta["shape"]
        yield "negative dimension", {**meta, "shape": [-1, *shape[1:]]}, True
        yield "two negative dimensions", {**meta, "shape": [-2, -4]}, True
        yield "huge shape", {**meta, "shape": [2**40, 2**40]}, True
        yield "overflowing shape", {**meta, "shape": [2**62 + 1, 4]}, True
        yield "shape past int64", {**meta, "shape": [2**64]}, True
        yield "object dtype", {**meta, "dtype": "|O"}, True
        yield "structured dtype", {**meta, "dtype": "i4,i4"}, True
        yield "sub-array dtype", {**meta, "dtype": "(2,)i4"}, True
        yield "bad order", {**meta, "order": "K"}, True
        yield "long dtype string", {**meta, "dtype": "<" * 40 + "f8"}, True
        for dtype in ("V0", "S0", "U0", "<U2147483647", "V2147483647"):
            for dims in ([2**40], [0, 2**40]):
                yield f"dtype {dtype} shape {dims}", {**meta, "dtype": dtype, "shape": dims}, False


class TestPandas(SerializerTests):
    name = "pandas"
    optional_meta = frozenset({"attrs", "dup"})

    def samples(self) -> dict[str, object]:
        np = pytest.importorskip("numpy")
        pd = pytest.importorskip("pandas")
        frame = pd.DataFrame({
            "ints": np.arange(6, dtype=np.int64),
            "floats": [0.5, np.nan, -0.0, np.inf, 1e300, 2.0],
            "flags": [True, False] * 3,
            "text": pd.Series(["a", None, "ünï", "", np.nan, "z"], dtype=object),
            "cat": pd.Categorical(["x", "y", "x", None, "y", "x"], ordered=True),
            "when": pd.date_range("2024-01-01", periods=6, freq="h", tz="Europe/Paris"),
            "nullable": pd.array([1, None, 3, 4, None, 6], dtype="Int64"),
            "arrow_text": pd.array(["p", None, "q", "r", "s", "t"], dtype="string[pyarrow]"),
        }, index=pd.RangeIndex(10, 16, name="row"))
        frame.attrs = {"source": "conformance", "n": 6}
        wide = pd.DataFrame(np.arange(48.0).reshape(8, 6), columns=list("abcdef"))
        multi = pd.MultiIndex.from_product([["a", "b"], [1, 2]], names=["k", "i"])
        return {
            "frame": frame,
            "strided": wide.iloc[::2, ::2],
            "empty": pd.DataFrame(),
            "no_rows": pd.DataFrame({"a": pd.Series([], dtype="float64"),
                                     "s": pd.Series([], dtype=object)}),
            "series": pd.Series([1.5, 2.5, 3.5], name="s",
                                index=pd.date_range("2024-01-01", periods=3, freq="D")),
            "multi": pd.DataFrame({"v": [1, 2, 3, 4]}, index=multi),
            "index": pd.Index(["x", "y", "z"], name="letters"),
            "durations": pd.TimedeltaIndex([0, 10**9, None], name="dt"),
            "duplicates": pd.Series([1, 2], index=["a", "a"]),
        }

    def assert_equal(self, got: Any, want: Any) -> None:
        import pandas as pd

        assert type(got) is type(want)
        exact = {"check_exact": True, "check_freq": True, "check_flags": True}
        if isinstance(want, pd.DataFrame):
            pd.testing.assert_frame_equal(got, want, **exact)
        elif isinstance(want, pd.Series):
            pd.testing.assert_series_equal(got, want, **exact)
        else:
            pd.testing.assert_index_equal(got, want, exact=True, check_exact=True)
            assert getattr(got, "freq", None) == getattr(want, "freq", None)
        assert getattr(got, "attrs", {}) == getattr(want, "attrs", {})

    def hostile_metas(self, meta: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], bool]]:
        from conformance import _positions, _with

        for path in _positions(meta):
            where = "/".join(map(str, path))
            key = path[-1]
            if path[0] == "attrs":  # the user's own JSON: any value is valid
                continue
            if key == "n":
                for n in (-1, 2**62, "9" * 30):
                    yield f"{where}={n}", _with(meta, path, n), True
            elif key == "b" or (len(path) > 1 and path[-2] == "b"):
                for ref in (10**6, -1):
                    yield f"{where}={ref}", _with(meta, path, ref), True
            elif key == "k":
                yield f"{where}=bogus", _with(meta, path, "bogus"), True
            elif key == "step":
                yield f"{where}=0", _with(meta, path, 0), True
            elif key == "kind":
                yield f"{where}=bogus", _with(meta, path, "bogus"), True


class TestArrow(SerializerTests):
    name = "arrow"
    optional_meta = frozenset({"chunks"})

    def samples(self) -> dict[str, object]:
        pa = pytest.importorskip("pyarrow")
        table = pa.table({
            "i": pa.array([1, None, 3], pa.int64()),
            "s": ["a", None, "ünï"],
            "l": pa.array([[1, 2], [], None]),
            "st": pa.array([{"x": 1, "y": "a"}, None, {"x": 3, "y": None}]),
            "d": pa.array(["u", "v", "u"]).dictionary_encode(),
            "ts": pa.array([0, 1, None], pa.timestamp("ns", tz="UTC")),
        }).replace_schema_metadata({"origin": "conformance"})
        return {
            "table": table,
            "sliced": table.slice(1, 2),  # a non-zero offset into every buffer
            "batch": pa.record_batch({"a": [1.5, None], "b": ["x", "y"]}),
            "chunked": pa.chunked_array([[1, 2], [3]]),
            "array": pa.array([1, None, 3], pa.int32()),
            "array_offset": pa.array(range(10)).slice(3, 4),
            "empty": pa.table({"a": pa.array([], pa.int64())}),
            "no_columns": pa.table({}),
            "empty_batch": pa.record_batch({"a": pa.array([], pa.string())}),
            "empty_chunked": pa.chunked_array([], pa.int64()),
        }

    def assert_equal(self, got: Any, want: Any) -> None:
        import pyarrow as pa

        assert type(got) is type(want)
        if isinstance(want, (pa.Table, pa.RecordBatch)):
            assert got.equals(want, check_metadata=True)
        else:
            assert got.type == want.type and got.equals(want)
        if isinstance(want, pa.ChunkedArray):
            assert got.num_chunks == want.num_chunks

    def hostile_metas(self, meta: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], bool]]:
        for rows in (meta["rows"] + 1, -1, 2**62, "x", None):
            yield f"rows={rows!r}", {**meta, "rows": rows}, True
        yield "kind=bogus", {**meta, "kind": "bogus"}, True


class TestPolars(TestArrow):
    name = "polars"
    optional_meta = frozenset({"chunks", "name"})

    def samples(self) -> dict[str, object]:
        pl = pytest.importorskip("polars")
        pytest.importorskip("pyarrow")
        day = datetime.datetime(2024, 1, 1)
        frame = pl.DataFrame({
            "i": [1, None, 3], "f": [0.5, float("nan"), None], "s": ["a", None, "ünï"],
            "c": pl.Series(["x", "y", "x"], dtype=pl.Categorical),
            "l": [[1, 2], [], None], "b": [True, False, None],
            "t": pl.Series([day, None, day]).dt.replace_time_zone("UTC"),
            "st": [{"a": 1, "b": "x"}, {"a": 2, "b": None}, None],
        })
        return {
            "frame": frame,
            "sliced": frame.slice(1, 2),
            "strided": frame.gather_every(2),
            "series": pl.Series("x", [1, 2, 3]),
            "unnamed": pl.Series([1.5, None]),
            "empty": pl.DataFrame(),
            "empty_series": pl.Series("e", [], dtype=pl.Int64),
        }

    def assert_equal(self, got: Any, want: Any) -> None:
        import polars as pl
        from polars.testing import assert_frame_equal, assert_series_equal

        assert type(got) is type(want)
        if isinstance(want, pl.DataFrame):
            assert_frame_equal(got, want, check_exact=True)
        else:
            assert_series_equal(got, want, check_exact=True)

    def hostile_metas(self, meta: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], bool]]:
        yield from super().hostile_metas(meta)
        yield "polars=bogus", {**meta, "polars": "bogus"}, True


@dataclass(frozen=True)
class Point:  # an importable class: unpickling it runs code
    x: int
    y: int


class TestPickle(SerializerTests):
    name = "pickle"
    fallback = True
    optional_meta = frozenset({"buffers"})
    # (arrays inside values are in a form the data-only loader may build)
    plain_samples = frozenset({"numbers", "mapping", "sets", "empties", "shared", "when",
                               "big"})
    hostile_buffers = False  # a hostile stream runs code by design when trusted

    def samples(self) -> dict[str, object]:
        np = pytest.importorskip("numpy")
        inner = [1, 2]
        return {
            "numbers": [1, 2.5, -3, 10**30, True, None],
            "mapping": {"a": (1, 2), "b": {"nested": [b"bytes", "text"]}},
            "sets": [set(), {1, 2}, frozenset({"x"}), complex(1, -2)],
            "empties": ["", b"", (), [], {}],
            "shared": [inner, inner],  # identity survives
            "when": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
            "point": Point(1, 2),
            "function": lambda x: x * 3,
            "big": {"array": np.arange(20_000.0)},  # an out-of-band buffer: meta buffers=1
        }

    def assert_equal(self, got: Any, want: Any) -> None:
        import numpy as np

        if isinstance(want, np.ndarray):
            assert type(got) is np.ndarray and got.dtype == want.dtype
            assert got.tobytes() == want.tobytes()
        elif isinstance(want, types.FunctionType):
            assert type(got) is types.FunctionType and got(4) == want(4)
        elif isinstance(want, dict):
            assert type(got) is dict and list(got) == list(want)
            for k in want:
                self.assert_equal(got[k], want[k])
        elif isinstance(want, (list, tuple)):
            assert type(got) is type(want) and len(got) == len(want)
            for g, w in zip(got, want):
                self.assert_equal(g, w)
            if len(want) == 2 and want[0] is want[1]:
                assert got[0] is got[1], "shared identity lost"
        else:
            assert type(got) is type(want) and got == want

    def hostile_metas(self, meta: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], bool]]:
        for n in (-1, meta.get("buffers", 0) + 1, 2**62, "x", None, [1]):
            yield f"buffers={n!r}", {**meta, "buffers": n}, True
