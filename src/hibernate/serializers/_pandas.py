"""The pandas serializer: DataFrames, Series and Indexes as column buffers, with no pickle.

Each column is stored in its own native form, described by a small JSON node in ``meta``:

- numpy columns of plain dtypes (numbers, bools, datetimes, timedeltas): the column's bytes,
  written from the frame's own memory;
- object columns holding only ``str`` (and None / NaN / ``pd.NA`` gaps): UTF-8 bytes plus
  int64 offsets, Arrow's large-string layout, so no string goes through the pickler one by
  one (no pickle memo of millions of entries, none of the per-element opcodes);
- categoricals: their codes plus their categories (an Index, stored the same way);
- timezone-aware datetimes: UTC values plus the zone's name;
- nullable masked columns (``Int64``, ``Float64``, ``boolean``, ...): values plus mask;
- Arrow-backed columns (``ArrowDtype``, ``StringDtype("pyarrow")``, pandas 3's default
  ``str``): the Arrow data as an Arrow IPC stream;
- indexes: ranges as three numbers, MultiIndexes as levels plus codes, other indexes as
  their values (with a DatetimeIndex's frequency).

Labels (names) and ``attrs`` must be plain JSON values (strings, numbers, bools, None,
tuples of those). Anything else (object columns of mixed types, periods, intervals, sparse
columns, subclasses, ``attrs`` holding objects) makes ``dump`` raise ``Decline`` and the
value goes to the pickle serializer instead. Loading runs no code from the file, so an
untrusted file's frames load with ``data_only=True``; every length, offset and code read from
the file is checked before use (Arrow data with a full ``validate``).
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._base import Buffer, Decline, Dumped, Serializer
from ._pandas_columns import (
    _INDEX_TYPES,
    _check_json,
    _In,
    _label,
    _Out,
    _pd,
    _unlabel,
    _values,
)

__all__ = ["PandasSerializer", "portable_pandas", "portable_reduce"]


# ---- the serializer ------------------------------------------------------------------------

class PandasSerializer(Serializer):
    name = "pandas"
    version = 1

    def handles(self, obj: object) -> bool:
        pd = _pd()
        t = type(obj)
        return t is pd.DataFrame or t is pd.Series or (
            t.__name__ in _INDEX_TYPES and t is getattr(pd, t.__name__))

    def dump(self, obj: object) -> Dumped:
        pd = _pd()
        out = _Out()
        meta: dict[str, Any]
        if isinstance(obj, pd.DataFrame):
            meta = {"kind": "frame", "columns": out.index(obj.columns),
                    "index": out.index(obj.index),
                    "data": [out.column(_values(obj.iloc[:, i])) for i in range(obj.shape[1])]}
        elif isinstance(obj, pd.Series):
            meta = {"kind": "series", "name": _label(obj.name), "index": out.index(obj.index),
                    "values": out.column(_values(obj))}
        else:
            return Dumped({"kind": "index", "index": out.index(obj)}, out.buffers)
        _check_json(obj.attrs)
        meta["attrs"] = obj.attrs
        meta["dup"] = bool(obj.flags.allows_duplicate_labels)
        return Dumped(meta, out.buffers)

    def raw_buffers(self, meta: Mapping[str, Any], count: int) -> set[int]:
        """The buffers of numpy columns (numbers, bools, datetimes, codes, masks): raw.
        String offsets and text, Arrow streams and labels are decoded: never mapped."""
        found: set[int] = set()
        todo: list[Any] = [meta]
        while todo:
            node = todo.pop()
            if isinstance(node, dict):
                if node.get("k") == "np" and type(node.get("b")) is int:
                    found.add(node["b"])
                else:
                    todo.extend(node.values())
            elif isinstance(node, list):
                todo.extend(node)
        return {b for b in found if 0 <= b < count}

    def load(self, meta: dict[str, Any], buffers: Sequence[Buffer]) -> object:
        pd = _pd()
        src = _In(buffers)
        kind = meta.get("kind")
        if kind == "index":
            value = src.index(meta["index"])
        elif kind == "series":
            index = src.index(meta["index"])
            values = src.column(meta["values"])
            if len(values) != len(index):
                raise ValueError("a Series' values and index differ in length")
            value = pd.Series(values, index=index, name=_unlabel(meta["name"]), copy=False,
                              dtype=object if _is_object(values) else None)
        elif kind == "frame":
            columns = src.index(meta["columns"])
            index = src.index(meta["index"])
            data = [src.column(n) for n in meta["data"]]
            if len(data) != len(columns) or any(len(c) != len(index) for c in data):
                raise ValueError("a DataFrame's columns do not match its axes")
            value = pd.DataFrame(
                {i: pd.Series(c, index=index, copy=False,
                              dtype=object if _is_object(c) else None)
                 for i, c in enumerate(data)}, index=index, copy=False)
            value.columns = columns
        else:
            raise ValueError(f"unknown pandas value kind {kind!r}")
        if len(src.used) != len(buffers):
            raise ValueError("the value's buffers do not match its description")
        if kind != "index":
            attrs = meta.get("attrs", {})
            if not isinstance(attrs, dict):
                raise ValueError("bad attrs")
            value.attrs = attrs
            value.flags.allows_duplicate_labels = bool(meta.get("dup", True))
        return value


def _is_object(values: Any) -> bool:
    return isinstance(values, np.ndarray) and values.dtype == object


# ---- inside pickled values -----------------------------------------------------------------

def portable_reduce(obj: object) -> tuple[Any, ...] | None:
    """A DataFrame, Series or Index inside a pickled value (held in a dict, sharing an
    index, ...) in the serializer's own form: ``portable_pandas(meta, buffers)``, the meta
    plain JSON-like data and each buffer a ``PickleBuffer`` (out of band when large, written
    from the value's memory). No pandas or numpy internals are named, so it loads with
    another pandas and with ``data_only``. None when the value has no native form (the
    pickler then uses pandas' own)."""
    serializer = PandasSerializer()
    if not serializer.handles(obj):
        return None
    try:
        dumped = serializer.dump(obj)
    except Decline:
        return None
    return (portable_pandas, (dumped.meta, tuple(
        pickle.PickleBuffer(b) if isinstance(b, memoryview) and b.nbytes else bytes(b)
        for b in dumped.buffers)))


def portable_pandas(meta: dict[str, Any], buffers: tuple[Any, ...]) -> object:
    """The value ``portable_reduce`` wrote, read as the serializer reads a file's (every
    length, offset and code checked); buffers pickled in the stream come back as bytes and
    are made writable, so that the value's columns are."""
    if type(meta) is not dict or type(buffers) is not tuple:
        raise ValueError("bad pandas value")
    views = [b if isinstance(b, (bytearray, memoryview, pickle.PickleBuffer))
             else bytearray(b) for b in buffers]
    return PandasSerializer().load(meta, [memoryview(b) for b in views])
