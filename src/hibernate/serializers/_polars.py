"""The polars serializer: DataFrames and Series through Arrow (``to_arrow`` / ``from_arrow``),
stored as the Arrow serializer stores a table: an IPC stream written into the file as it
is produced, read back zero-copy and fully validated. Needs pyarrow; runs no code from the
file. polars' own dtype details that Arrow carries (categoricals, via field metadata) come
back; a polars Object column cannot go to Arrow and makes the value go to pickle."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._arrow import ArrowSerializer
from ._base import Buffer, Decline

__all__ = ["PolarsSerializer"]


def _pl() -> Any:
    import polars as pl

    return pl


class PolarsSerializer(ArrowSerializer):
    name = "polars"  # a serializer of its own, Arrow underneath
    version = 1

    def handles(self, obj: object) -> bool:
        pl = _pl()
        return type(obj) is pl.DataFrame or type(obj) is pl.Series

    def dump_to(self, obj: object, stream: Any, add_buffer: Any) -> tuple[dict[str, Any],
                                                                           list[int]]:
        pl = _pl()
        value: Any = obj
        # polars writes an Array column of width 0 but cannot read it back (from Arrow or
        # from its own pickle): such columns travel as lists and are cast back on load
        frame = value if type(obj) is pl.DataFrame else value.to_frame()
        widthless = [n for n, t in frame.schema.items()
                     if isinstance(t, pl.Array) and t.shape == (0,)]
        if widthless:
            frame = frame.with_columns([pl.col(n).cast(pl.List(frame.schema[n].inner))
                                        for n in widthless])
            value = frame if type(obj) is pl.DataFrame else frame.to_series()
        meta: dict[str, Any] = ({"polars": "frame"} if type(obj) is pl.DataFrame
                                else {"polars": "series", "name": value.name})
        try:
            arrow = value.to_arrow()
        except Exception as e:  # an Object column, say: Arrow cannot hold it
            raise Decline(f"polars value without an Arrow form ({e})") from None
        types = [f.type for f in arrow.schema] if hasattr(arrow, "schema") else [arrow.type]
        if any(_zero_width(t) for t in types):
            raise Decline("polars cannot read back an Array of width 0 inside another type")
        if widthless:
            meta["widthless"] = widthless
        arrow_meta, blobs = super().dump_to(arrow, stream, add_buffer)
        return {**arrow_meta, **meta}, blobs

    def load(self, meta: dict[str, Any], buffers: Sequence[Buffer]) -> object:
        pl = _pl()
        value = super().load(meta, buffers)
        widthless = meta.get("widthless", [])
        if not isinstance(widthless, list) or not all(isinstance(n, str) for n in widthless):
            raise ValueError("bad polars value description")
        if meta.get("polars") == "frame":
            frame = pl.from_arrow(value)
        elif meta.get("polars") == "series":
            frame = pl.Series(str(meta.get("name", "")), value).to_frame()
        else:
            raise ValueError("bad polars value description")
        for n in widthless:
            t = frame.schema.get(n)
            if not isinstance(t, pl.List):
                raise ValueError(f"polars column {n!r} is not the list it was saved as")
            frame = frame.with_columns(pl.col(n).cast(pl.Array(t.inner, 0)))
        return frame if meta["polars"] == "frame" else frame.to_series()


def _zero_width(t: Any) -> bool:
    """True when the Arrow type ``t`` is, or holds, a fixed-size list of size 0."""
    if getattr(t, "list_size", None) == 0:
        return True
    return any(_zero_width(t.field(i).type) for i in range(t.num_fields))
