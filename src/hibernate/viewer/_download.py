"""One entry as a file to download, when it is data: a DataFrame (pandas, or an Arrow or
polars table) as CSV or Parquet, a numpy array as ``.npy`` (written and meant to be read
with ``allow_pickle=False``). The value is read with ``data_only``: nothing is unpickled;
an entry that needs code, or is not of a type the format takes, is refused with a reason.

Non-goals: other formats, several entries at once, anything that changes the store."""

from __future__ import annotations

import io
import re
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


def encode(value: Any, fmt: str) -> bytes:
    """``value`` (read with ``data_only``) as ``fmt``; ``Refused`` when it does not fit."""
    if fmt not in FORMATS:
        raise Refused(f"unknown format {fmt!r} (csv, parquet or npy)")
    t = type(value)
    if fmt == "npy":
        if (t.__module__, t.__name__) not in _ARRAYS:
            raise Refused(f"only numpy arrays download as .npy, not {t.__qualname__}")
        if value.dtype.hasobject:
            raise Refused("an array of Python objects is not data (.npy would pickle it)")
        import numpy as np

        out = io.BytesIO()
        np.save(out, value, allow_pickle=False)
        return out.getvalue()
    frame = _pandas(value)
    if fmt == "csv":
        keep = type(frame.index).__name__ != "RangeIndex"  # a default index is not data
        return frame.to_csv(index=keep).encode("utf-8")  # type: ignore[no-any-return]
    try:
        out = io.BytesIO()
        frame.to_parquet(out)
    except (ImportError, ValueError, TypeError) as err:
        raise Refused(f"cannot write Parquet: {err}") from err
    return out.getvalue()
