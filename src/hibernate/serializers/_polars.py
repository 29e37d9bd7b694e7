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
        try:
            if type(obj) is pl.DataFrame:
                arrow, meta = value.to_arrow(), {"polars": "frame"}
            else:
                arrow, meta = value.to_arrow(), {"polars": "series", "name": value.name}
        except Exception as e:  # an Object column, say: Arrow cannot hold it
            raise Decline(f"polars value without an Arrow form ({e})") from None
        arrow_meta, blobs = super().dump_to(arrow, stream, add_buffer)
        return {**arrow_meta, **meta}, blobs

    def load(self, meta: dict[str, Any], buffers: Sequence[Buffer]) -> object:
        pl = _pl()
        value = super().load(meta, buffers)
        if meta.get("polars") == "frame":
            return pl.from_arrow(value)
        if meta.get("polars") == "series":
            return pl.Series(str(meta.get("name", "")), value)
        raise ValueError("bad polars value description")
