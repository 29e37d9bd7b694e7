"""The pandas serializer's column forms: writing a value's columns and indexes into buffers
with JSON nodes describing them (``_Out``), and reading them back with every length, offset
and code checked (``_In``). See _pandas.py for the forms; nothing here runs code from a file.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._limits import max_expansion
from ._base import Buffer, Decline
from ._ipc import read_ipc, zone_name
from ._numpy import _dtype_from_json, _plain

__all__ = ["_INDEX_TYPES", "_In", "_Out", "_check_json", "_label", "_pd", "_unlabel", "_values"]

_MISSING_CODES = {1: "None", 2: "nan", 3: "NA"}
_MASKED = frozenset({"Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64",
                     "Float32", "Float64", "boolean"})
_MAX_LABELS = 100_000  # an object index of mixed labels (ints and strings, say) is kept as JSON
_INDEX_TYPES = ("Index", "RangeIndex", "MultiIndex", "DatetimeIndex", "TimedeltaIndex",
                "CategoricalIndex")


def _pd() -> Any:
    import pandas as pd  # type: ignore[import-untyped]

    return pd


def _bytes(arr: np.ndarray) -> memoryview:
    """A contiguous array's own memory as bytes (no copy)."""
    flat: Any = arr.view(np.uint8)
    return memoryview(flat)


# ---- labels and attrs: plain JSON only ---------------------------------------------------

def _label(x: object) -> Any:
    if x is None or type(x) in (bool, int, str):
        return x
    if type(x) is float:
        return x if math.isfinite(x) else {"float": repr(x)}
    if type(x) is tuple:
        return {"tuple": [_label(v) for v in x]}
    raise Decline(f"a label of type {type(x).__name__}")


def _unlabel(x: Any) -> object:
    if isinstance(x, dict):
        if "tuple" in x:
            return tuple(_unlabel(v) for v in x["tuple"])
        if x.get("float") in ("nan", "inf", "-inf"):
            return float(x["float"])
        raise ValueError("bad label")
    if x is None or type(x) in (bool, int, float, str):
        return x
    raise ValueError("bad label")


def _check_json(x: object, depth: int = 0) -> None:
    """``attrs`` must come back equal and of the same types: JSON values, no tuples."""
    if depth > 50:
        raise Decline("attrs nested too deeply")
    if x is None or type(x) in (bool, int, str):
        return
    if type(x) is float and math.isfinite(x):
        return
    if type(x) is list:
        for v in x:
            _check_json(v, depth + 1)
        return
    if type(x) is dict and all(type(k) is str for k in x):
        for v in x.values():
            _check_json(v, depth + 1)
        return
    raise Decline(f"attrs hold a {type(x).__name__}")


# ---- writing -------------------------------------------------------------------------------

class _Out:
    """Collects buffers for one value; nodes refer to them by index."""

    def __init__(self) -> None:
        self.buffers: list[Buffer] = []

    def add(self, buf: Buffer) -> int:
        self.buffers.append(buf)
        return len(self.buffers) - 1

    def array(self, arr: np.ndarray) -> dict[str, Any]:
        if arr.ndim != 1 or not _plain(arr.dtype):
            raise Decline(f"an array of dtype {arr.dtype}")
        arr = np.ascontiguousarray(arr)
        return {"k": "np", "dtype": arr.dtype.str, "n": len(arr),
                "b": self.add(_bytes(arr) if len(arr) else b"")}

    def strings(self, arr: np.ndarray) -> dict[str, Any]:
        """An object array of str with None / NaN / NA gaps, as offsets + UTF-8 bytes."""
        pd = _pd()
        kinds = set(map(type, arr))
        if not kinds <= {str, type(None), float, type(pd.NA)}:
            raise Decline("an object column that is not all strings")
        node: dict[str, Any] = {"k": "str", "n": len(arr)}
        if kinds == {str}:
            offsets, data = _encode_strings(arr)
        else:
            offsets, data, gaps = _encode_with_gaps(arr)
            node["gaps"] = self.add(_bytes(gaps))
        node["b"] = [self.add(offsets), self.add(data)]
        return node

    def arrow(self, chunked: Any) -> dict[str, Any]:
        import pyarrow as pa  # type: ignore[import-untyped]

        sink = pa.BufferOutputStream()
        table = pa.table({"x": chunked})
        with pa.ipc.new_stream(sink, table.schema) as w:
            w.write_table(table)
        return {"k": "arrow", "n": len(chunked), "b": self.add(memoryview(sink.getvalue()))}

    def column(self, values: Any) -> dict[str, Any]:
        """One column (an ndarray or an ExtensionArray)."""
        pd = _pd()
        dtype = values.dtype
        if isinstance(values, np.ndarray):
            if dtype.kind == "O":
                return self.strings(values)
            return self.array(values)
        if isinstance(dtype, pd.CategoricalDtype):
            return {"k": "cat", "codes": self.array(np.asarray(values.codes)),
                    "categories": self.index(dtype.categories), "ordered": bool(dtype.ordered)}
        if isinstance(dtype, pd.DatetimeTZDtype):
            tz = str(dtype.tz)
            if pd.DatetimeTZDtype(dtype.unit, tz) != dtype:
                raise Decline(f"a time zone that its name does not restore ({tz})")
            return {"k": "dttz", "tz": tz, "values": self.array(values.tz_convert(None)._ndarray)}
        if isinstance(dtype, pd.StringDtype):
            na = "nan" if dtype.na_value is not pd.NA else "NA"
            if dtype.storage in ("pyarrow", "pyarrow_numpy"):  # pandas 2.1-2.2's name for str
                return {**self.arrow(values._pa_array), "as": "string", "na": na}
            if dtype.storage == "python":
                return {**self.strings(values._ndarray), "as": "string", "na": na}
            raise Decline(f"a string column stored as {dtype.storage}")
        if isinstance(dtype, pd.ArrowDtype):
            return self.arrow(values._pa_array)
        if type(dtype).__name__ in ("Int8Dtype", "Int16Dtype", "Int32Dtype", "Int64Dtype",
                                    "UInt8Dtype", "UInt16Dtype", "UInt32Dtype", "UInt64Dtype",
                                    "Float32Dtype", "Float64Dtype", "BooleanDtype"):
            return {"k": "masked", "dtype": dtype.name, "data": self.array(values._data),
                    "mask": self.array(values._mask)}
        if isinstance(values, pd.arrays.NumpyExtensionArray):
            return self.column(values.to_numpy())
        raise Decline(f"a column of dtype {dtype}")

    def index(self, idx: Any) -> dict[str, Any]:
        pd = _pd()
        cls = type(idx).__name__
        if cls not in _INDEX_TYPES or type(idx) is not getattr(pd, cls):
            raise Decline(f"an index of type {cls}")
        if cls == "RangeIndex":
            return {"k": "range", "start": idx.start, "stop": idx.stop, "step": idx.step,
                    "name": _label(idx.name)}
        if cls == "MultiIndex":
            return {"k": "multi", "levels": [self.index(lv) for lv in idx.levels],
                    "codes": [self.array(np.asarray(c)) for c in idx.codes],
                    "names": [_label(n) for n in idx.names]}
        values = _values(idx)
        try:
            column = self.column(values)
        except Decline:
            if not (isinstance(values, np.ndarray) and values.dtype.kind == "O"
                    and len(values) <= _MAX_LABELS):
                raise
            column = {"k": "labels", "values": [_label(v) for v in values]}  # mixed labels
        node = {"k": "index", "cls": cls, "values": column, "name": _label(idx.name)}
        freq = getattr(idx, "freqstr", None)
        if cls in ("DatetimeIndex", "TimedeltaIndex") and freq is not None:
            node["freq"] = freq
        return node


def _values(x: Any) -> Any:
    """A Series' or Index's values: the ndarray (a view) for numpy dtypes, else the
    ExtensionArray."""
    return x.to_numpy() if isinstance(x.dtype, np.dtype) else x.array


def _gap_code(v: object, na: object) -> int:
    """1 None, 2 NaN (a Python float), 3 pd.NA; 0 for anything else (not a gap)."""
    return 1 if v is None else 3 if v is na else 2 if (
        type(v) is float and math.isnan(v)) else 0


def _encode_with_gaps(arr: np.ndarray) -> tuple[Buffer, Buffer, np.ndarray]:
    """(offsets, UTF-8 bytes, gap codes) of strings with None / NaN / NA gaps (the caller
    checked the element types). With pyarrow, one C pass converts the strings and finds the
    gaps (a float that is not NaN fails it), and only the gaps are looked at one by one;
    without, every element is."""
    pd = _pd()
    n = len(arr)
    gaps = np.zeros(n, np.uint8)
    try:
        import pyarrow as pa
    except ImportError:
        for i, v in enumerate(arr.tolist()):
            if type(v) is not str:
                gaps[i] = _gap_code(v, pd.NA)
                if not gaps[i]:
                    raise Decline("an object column that is not all strings") from None
        values = arr.copy()
        values[gaps != 0] = ""
        return (*_encode_strings(values), gaps)
    try:
        a = pa.array(arr, type=pa.large_string(), from_pandas=True)
    except (pa.ArrowException, UnicodeError, TypeError, ValueError):
        raise Decline("an object column that is not all strings") from None
    where = np.flatnonzero(a.is_null().to_numpy(zero_copy_only=False))
    for i in where.tolist():
        gaps[i] = _gap_code(arr[i], pd.NA)
    if len(where) and not gaps[where].all():  # (kinds allows only these: a safeguard)
        raise Decline("an object column whose gaps are not None, NaN or NA")
    return (*_large_string_buffers(a, n), gaps)


def _large_string_buffers(a: Any, n: int) -> tuple[Buffer, Buffer]:
    """(int64 offsets, UTF-8 bytes) of an Arrow large-string array of ``n`` values, as views
    of its own buffers (null slots are empty)."""
    _, offsets, data = a.buffers()
    end = int(np.frombuffer(offsets, np.int64, n + 1)[-1])
    return (memoryview(offsets)[:8 * (n + 1)],
            memoryview(data)[:end] if data is not None else b"")


def _encode_strings(values: np.ndarray) -> tuple[Buffer, Buffer]:
    """(int64 offsets, UTF-8 bytes) of an object array of str: with pyarrow when it is
    installed (in C), else one ``encode`` per string."""
    n = len(values)
    try:
        import pyarrow as pa
    except ImportError:
        pass
    else:
        try:
            a = pa.array(values, type=pa.large_string())
        except (pa.ArrowException, UnicodeError) as e:
            raise Decline(f"a string that UTF-8 cannot hold ({e})") from None
        return _large_string_buffers(a, n)
    try:
        encoded = [s.encode("utf-8") for s in values]
    except UnicodeEncodeError as e:
        raise Decline(f"a string that UTF-8 cannot hold ({e})") from None
    bounds = np.zeros(n + 1, np.int64)
    np.cumsum(np.fromiter(map(len, encoded), np.int64, n), out=bounds[1:])
    return _bytes(bounds), b"".join(encoded)


# ---- reading -------------------------------------------------------------------------------

class _In:
    def __init__(self, buffers: Sequence[Buffer]) -> None:
        self.buffers = buffers
        self.used: set[int] = set()
        # no axis may be longer than the value's data can account for (a RangeIndex or a
        # null column costs nothing in the file and gigabytes once materialized)
        held = sum(memoryview(b).nbytes for b in buffers)
        self.max_rows = max_expansion() * max(held, 4096)

    def rows(self, n: int) -> int:
        if not 0 <= n <= self.max_rows:
            raise ValueError(f"an axis of {n} rows is more than this value's data can hold "
                             "(HIBERNATE_MAX_EXPANSION raises the bound)")
        return n

    def buf(self, i: Any) -> Buffer:
        if type(i) is not int or not 0 <= i < len(self.buffers) or i in self.used:
            raise ValueError("bad buffer reference")
        self.used.add(i)
        return self.buffers[i]

    def array(self, node: dict[str, Any]) -> np.ndarray:
        if node.get("k") != "np":
            raise ValueError("expected an array")
        dtype = _dtype_from_json(node["dtype"])
        n = int(node["n"])
        buf = self.buf(node["b"])
        if n < 0 or memoryview(buf).nbytes != n * dtype.itemsize:
            raise ValueError("array bytes do not match its dtype and length")
        return np.frombuffer(buf, dtype=dtype, count=n) if n else np.empty(0, dtype)

    def strings(self, node: dict[str, Any]) -> np.ndarray:
        pd = _pd()
        n = int(node["n"])
        off_buf, data_buf = (self.buf(i) for i in node["b"])
        out = _decode_strings(n, off_buf, data_buf)
        if "gaps" in node:
            gaps = np.frombuffer(self.buf(node["gaps"]), np.uint8)
            if len(gaps) != n or gaps.max(initial=0) > 3:
                raise ValueError("bad gaps in a string column")
            for code, value in ((1, None), (2, float("nan")), (3, pd.NA)):
                out[gaps == code] = value
        return out

    def arrow(self, node: dict[str, Any]) -> Any:
        table = read_ipc(self.buf(node["b"]))
        if table.num_columns != 1 or table.num_rows != int(node["n"]):
            raise ValueError("the Arrow data does not match its description")
        return table.column(0)

    def column(self, node: dict[str, Any]) -> Any:
        pd = _pd()
        k = node.get("k")
        if k == "np":
            return self.array(node)
        if k == "str":
            values = self.strings(node)
            if node.get("as") == "string":
                dtype = _string_dtype("python", _na(node))
                return values if dtype is None else pd.array(values, dtype=dtype)
            return values
        if k == "arrow":
            chunked = self.arrow(node)
            if node.get("as") == "string":
                dtype = _string_dtype("pyarrow", _na(node))
                if dtype is None:  # an older pandas: object strings with NaN gaps
                    out = np.asarray(chunked.to_numpy(zero_copy_only=False), dtype=object)
                    out[pd.isna(out)] = np.nan
                    return out
                return pd.array(chunked, dtype=dtype)
            return pd.arrays.ArrowExtensionArray(chunked)
        if k == "labels":
            labels = node["values"]
            if not isinstance(labels, list) or len(labels) > _MAX_LABELS:
                raise ValueError("bad labels")
            out = np.empty(len(labels), object)
            out[:] = [_unlabel(v) for v in labels]
            return out
        if k == "cat":
            dtype = pd.CategoricalDtype(self.index(node["categories"]), bool(node["ordered"]))
            return pd.Categorical.from_codes(self.array(node["codes"]), dtype=dtype,
                                             validate=True)
        if k == "dttz":
            values = self.array(node["values"])
            if values.dtype.kind != "M":
                raise ValueError("timezone-aware values must be datetimes")
            return pd.array(values).tz_localize("UTC").tz_convert(zone_name(node.get("tz")))
        if k == "masked":
            if node["dtype"] not in _MASKED:
                raise ValueError(f"unknown masked dtype {node['dtype']!r}")
            dtype = pd.api.types.pandas_dtype(node["dtype"])
            data, mask = self.array(node["data"]), self.array(node["mask"])
            if mask.dtype != np.bool_ or len(mask) != len(data) or data.dtype != dtype.type:
                raise ValueError("bad masked column")
            return dtype.construct_array_type()(data, mask)
        raise ValueError(f"unknown column kind {k!r}")

    def index(self, node: dict[str, Any]) -> Any:
        pd = _pd()
        k = node.get("k")
        if k == "range":
            r = range(int(node["start"]), int(node["stop"]), int(node["step"]))
            self.rows(len(r))
            return pd.RangeIndex(r.start, r.stop, r.step, name=_unlabel(node["name"]))
        if k == "multi":
            return pd.MultiIndex(levels=[self.index(lv) for lv in node["levels"]],
                                 codes=[self.array(c) for c in node["codes"]],
                                 names=[_unlabel(n) for n in node["names"]],
                                 verify_integrity=True)
        if k != "index" or node.get("cls") not in _INDEX_TYPES:
            raise ValueError("unknown index kind")
        values = self.column(node["values"])
        idx = pd.Index(values, name=_unlabel(node["name"]), copy=False,
                       dtype=object if isinstance(values, np.ndarray) and values.dtype == object
                       else None)
        if "freq" in node:
            idx = type(idx)(idx, freq=str(node["freq"]))
        if type(idx).__name__ != node["cls"]:
            raise ValueError(f"an index stored as {node['cls']} came back as "
                             f"{type(idx).__name__}")
        return idx


def _string_dtype(storage: str, na: Any) -> Any:
    """pandas' string dtype of this storage and missing value, as this pandas spells it:
    ``StringDtype(storage, na_value)`` (pandas 2.3+, whose default ``str`` is the NaN one),
    ``StringDtype("pyarrow_numpy")`` for Arrow strings with NaN on pandas 2.1-2.2; None
    where this pandas has no such dtype (object strings with NaN gaps then stand in)."""
    pd = _pd()
    try:
        return pd.StringDtype(storage, na_value=na)
    except TypeError:  # before pandas 2.3
        pass
    if na is pd.NA:
        return pd.StringDtype(storage)
    if storage == "pyarrow":
        try:
            return pd.StringDtype("pyarrow_numpy")
        except (ValueError, TypeError, ImportError):
            return None
    return None


def _na(node: dict[str, Any]) -> Any:
    return float("nan") if node.get("na") == "nan" else _pd().NA


def _decode_strings(n: int, off_buf: Buffer, data_buf: Buffer) -> np.ndarray:
    offsets = np.frombuffer(off_buf, np.int64)
    if n < 0 or len(offsets) != n + 1:
        raise ValueError("string offsets do not match the column's length")
    try:
        import pyarrow as pa
    except ImportError:
        pa = None
    if pa is not None:
        try:
            arr = pa.LargeStringArray.from_buffers(n, pa.py_buffer(off_buf),
                                                   pa.py_buffer(data_buf))
            arr.validate(full=True)  # offsets in order and in range, valid UTF-8
        except (pa.ArrowException, OSError) as e:
            raise ValueError(f"damaged string column ({e})") from None
        out: np.ndarray = arr.to_numpy(zero_copy_only=False)
        return out
    data = bytes(data_buf)
    bounds = offsets.tolist()
    if bounds[0] != 0 or bounds[-1] != len(data) or any(
            a > b for a, b in zip(bounds, bounds[1:])):
        raise ValueError("bad string offsets")
    out = np.empty(n, object)
    out[:] = [data[a:b].decode("utf-8") for a, b in zip(bounds, bounds[1:])]
    return out
