"""One entry as a file to download, when it is data: a DataFrame (pandas, or an Arrow or
polars table) as CSV or Parquet, a numpy array as ``.npy`` (written and meant to be read
with ``allow_pickle=False``). The value is read with ``data_only``: nothing is unpickled;
an entry that needs code, or is not of a type the format takes, is refused with a reason.

Non-goals: other formats, several entries at once, anything that changes the store."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from .._reports import clean

__all__ = ["FORMATS", "Refused", "disposition", "encode", "formats_for", "safe_filename"]

FORMATS = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet",
           "npy": "application/octet-stream"}

_FRAMES = {("pandas", "DataFrame"), ("pandas.core.frame", "DataFrame"),
           ("pyarrow.lib", "Table"), ("polars.dataframe.frame", "DataFrame")}
_ARRAYS = {("numpy", "ndarray")}


class Refused(Exception):
    """This entry cannot be downloaded in this format (the message says why)."""


def _kind(type_name: str) -> str | None:
    module, _, name = type_name.rpartition(".")
    if (module, name) in _FRAMES or type_name in ("pandas.DataFrame", "pyarrow.Table",
                                                   "polars.DataFrame"):
        return "frame"
    if (module, name) in _ARRAYS or type_name == "numpy.ndarray":
        return "array"
    return None


def formats_for(type_name: str) -> tuple[str, ...]:
    """The formats an entry of this (manifest) type name can be downloaded as."""
    kind = _kind(type_name)
    return ("csv", "parquet") if kind == "frame" else ("npy",) if kind == "array" else ()


def safe_filename(name: str, fmt: str) -> str:
    """An ASCII file name made from an entry's name: letters, digits, ``._-`` only."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "entry"
    return f"{stem[:80]}.{fmt}"


def disposition(name: str, fmt: str) -> str:
    """A ``Content-Disposition`` for entry ``name``: the ASCII ``filename`` and, when the
    name is not plain ASCII, the exact (sanitized) name as RFC 5987's ``filename*``."""
    ascii_name = safe_filename(name, fmt)
    exact = f"{clean(name, 80).replace('/', '_')}.{fmt}"
    if exact == ascii_name:
        return f'attachment; filename="{ascii_name}"'
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(exact, safe='')}"


def _pandas(value: Any) -> Any:
    t = type(value)
    key = (t.__module__, t.__name__)
    if key in (("pandas", "DataFrame"), ("pandas.core.frame", "DataFrame")):
        return value
    if key == ("pyarrow.lib", "Table"):
        return value.to_pandas()
    if key == ("polars.dataframe.frame", "DataFrame"):
        return value.to_pandas()
    raise Refused(f"a {t.__module__}.{t.__qualname__} is not a table")


PIECE = 8 << 20   # bytes of an array's memory per piece sent
ROWS = 65_536     # rows of a frame per CSV piece or Parquet row group


def encode(value: Any, fmt: str) -> Iterator[bytes]:
    """``value`` (read with ``data_only``) as ``fmt``, in pieces to stream: the value is
    never encoded whole in memory beside itself. ``Refused`` (before any piece) when it
    does not fit."""
    if fmt not in FORMATS:
        raise Refused(f"unknown format {fmt!r} (csv, parquet or npy)")
    t = type(value)
    if fmt == "npy":
        if (t.__module__, t.__name__) not in _ARRAYS:
            raise Refused(f"only numpy arrays download as .npy, not {t.__qualname__}")
        if value.dtype.hasobject:
            raise Refused("an array of Python objects is not data (.npy would pickle it)")
        return _npy(value)
    frame = _pandas(value)
    if fmt == "csv":
        return _csv(frame)
    try:
        import pyarrow as pa  # type: ignore[import-untyped]
    except ImportError as err:
        raise Refused("Parquet needs pyarrow (pip install pyarrow)") from err
    try:
        schema = pa.Schema.from_pandas(frame)  # from every row: no piece can disagree
    except (ValueError, TypeError, pa.ArrowException) as err:
        raise Refused(f"cannot write Parquet: {err}") from err
    return _parquet(frame, schema)


def _npy(array: Any) -> Iterator[bytes]:
    """NumPy's ``.npy`` header, then the array's own memory in pieces (a copy only for an
    array that is contiguous neither way)."""
    import numpy as np
    from numpy.lib import format as npy

    if not (array.flags.c_contiguous or array.flags.f_contiguous):
        array = np.ascontiguousarray(array)
    header = io.BytesIO()
    fields = npy.header_data_from_array_1_0(array)
    try:
        npy.write_array_header_1_0(header, fields)
    except ValueError:  # a header too long for version 1.0
        npy.write_array_header_2_0(header, fields)
    # the bytes as uint8 (a view: datetimes, empty shapes and all), before the first piece
    flat = (array.T if fields["fortran_order"] else array).reshape(-1).view(np.uint8)
    return _pieces(header.getvalue(), flat)


def _pieces(header: bytes, flat: Any) -> Iterator[bytes]:
    yield header
    for start in range(0, flat.nbytes, PIECE):
        yield flat[start:start + PIECE].tobytes()


def _csv(frame: Any) -> Iterator[bytes]:
    keep = type(frame.index).__name__ != "RangeIndex"  # a default index is not data
    for start in range(0, max(len(frame), 1), ROWS):
        yield frame.iloc[start:start + ROWS].to_csv(index=keep, header=start == 0).encode()


class _Pieces(io.RawIOBase):
    """A write-only file that keeps what was written until it is taken."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.written = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        piece = bytes(data)
        self.parts.append(piece)
        self.written += len(piece)
        return len(piece)

    def tell(self) -> int:
        return self.written

    def take(self) -> bytes:
        out, self.parts = b"".join(self.parts), []
        return out


def _parquet(frame: Any, schema: Any) -> Iterator[bytes]:
    import pyarrow as pa
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    sink = _Pieces()
    with pq.ParquetWriter(sink, schema) as writer:
        for start in range(0, max(len(frame), 1), ROWS):
            writer.write_table(pa.Table.from_pandas(frame.iloc[start:start + ROWS],
                                                    schema=schema))
            yield sink.take()
    yield sink.take()  # the footer
