"""The Arrow serializer: pyarrow Tables, RecordBatches, ChunkedArrays and Arrays as an Arrow
IPC stream, with no pickle.

The IPC stream is written straight into the file as pyarrow produces it (its data buffers
are handed over zero-copy and written from their own memory), and read back zero-copy: the
loaded table's buffers are the blob's memory (the memory-mapped file with ``mmap=True``).
Schemas, field and schema metadata, dictionaries, nested types and nulls travel as Arrow
itself records them. Loading runs no code from the file (extension types resolve only to
types registered in the loading process, and from an untrusted file none is accepted); the
stream is read as _ipc.py says (no compressed bodies, full validation).
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from typing import Any

from ._base import Buffer, Decline, StreamingSerializer
from ._ipc import read_ipc

__all__ = ["ArrowSerializer", "portable_arrow", "portable_arrow_reduce"]

_KINDS = ("table", "batch", "chunked", "array")


def _pa() -> Any:
    import pyarrow as pa  # type: ignore[import-untyped]

    return pa


def _kind(obj: object) -> str | None:
    pa = _pa()
    if type(obj) is pa.Table:
        return "table"
    if type(obj) is pa.RecordBatch:
        return "batch"
    if type(obj) is pa.ChunkedArray:
        return "chunked"
    if isinstance(obj, pa.Array):
        return "array"
    return None


class _Sink:
    """What pyarrow's PythonFile writes to: our blob stream, with no buffering of its own."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.closed = False

    def write(self, data: Any) -> int:
        return int(self._stream.write(data))

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


class ArrowSerializer(StreamingSerializer):
    name = "arrow"
    version = 1

    def handles(self, obj: object) -> bool:
        return _kind(obj) is not None

    def dump_to(self, obj: object, stream: Any, add_buffer: Any) -> tuple[dict[str, Any],
                                                                           list[int]]:
        pa = _pa()
        kind = _kind(obj)
        if kind is None:
            raise Decline(f"not an Arrow value: {type(obj).__name__}")
        if kind in ("chunked", "array"):
            table = pa.table({"x": obj})
        elif kind == "batch":
            table = pa.Table.from_batches([obj])
        else:
            table = obj
        sink = pa.PythonFile(_Sink(stream), mode="w")
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        meta: dict[str, Any] = {"kind": kind, "rows": table.num_rows}
        if kind == "chunked":
            meta["chunks"] = obj.num_chunks  # type: ignore[attr-defined]
        return meta, []

    def load(self, meta: dict[str, Any], buffers: Sequence[Buffer]) -> object:
        pa = _pa()
        kind = meta.get("kind")
        if kind not in _KINDS or len(buffers) != 1:
            raise ValueError("bad Arrow value description")
        table = read_ipc(buffers[0])
        if table.num_rows != int(meta.get("rows", -1)):
            raise ValueError("the Arrow data does not match its description")
        if kind == "table":
            return table
        if kind == "batch":
            if table.num_rows == 0:
                return pa.RecordBatch.from_pylist([], schema=table.schema)
            batches = table.to_batches()  # one, as written
            return batches[0] if len(batches) == 1 else table.combine_chunks().to_batches()[0]
        if table.num_columns != 1:
            raise ValueError("an Arrow array stored as more than one column")
        column = table.column(0)
        return column if kind == "chunked" else column.combine_chunks()


# ---- inside pickled values -----------------------------------------------------------------

def portable_arrow_reduce(obj: object) -> tuple[Any, ...] | None:
    """A Table, RecordBatch, ChunkedArray or Array inside a pickled value, as
    ``portable_arrow(kind, IPC stream)`` (the stream out of band when large): Arrow's own
    format, which every pyarrow reads, instead of pyarrow's pickle of its internals."""
    kind = _kind(obj)
    if kind is None:
        return None
    pa = _pa()
    try:
        table: Any = (pa.table({"x": obj}) if kind in ("chunked", "array") else
                      pa.Table.from_batches([obj]) if kind == "batch" else obj)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
    except (pa.ArrowException, TypeError, ValueError):
        return None  # (an extension type pyarrow cannot write: its own pickle then)
    return (portable_arrow, (kind, pickle.PickleBuffer(memoryview(sink.getvalue()))))


def portable_arrow(kind: str, stream: Any) -> object:
    """The value ``portable_arrow_reduce`` wrote, read as a file's Arrow entries are (no
    compressed bodies, full validation; plain types only from an untrusted file)."""
    if kind not in _KINDS:
        raise ValueError("bad Arrow value kind")
    meta = {"kind": kind, "rows": -1}
    table = read_ipc(stream)
    meta["rows"] = table.num_rows
    if kind == "chunked":
        meta["chunks"] = table.column(0).num_chunks if table.num_columns else 0
    return ArrowSerializer().load(meta, [stream])
