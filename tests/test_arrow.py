"""pyarrow values: stored as an Arrow IPC stream (no pickle), streamed into the file as pyarrow
writes it, loaded zero-copy, and loadable from untrusted files."""

from __future__ import annotations

import pytest

import hibernate
from hibernate import serializers

pa = pytest.importorskip("pyarrow")

BUILD = """
import numpy as np
import pyarrow as pa

def build():
    n = 2_000_000
    table = pa.table({"x": np.arange(n),
                      "s": pa.array([f"v{i % 100}" for i in range(n)]),
                      "n": pa.array([1.5, None] * (n // 2)),
                      "d": pa.array(["lo", "hi"] * (n // 2)).dictionary_encode(),
                      "l": pa.array([[i, i + 1] for i in range(1000)] * (n // 1000))})
    table = table.replace_schema_metadata({"origin": "sensor-7"})
    batch = pa.record_batch({"a": [1, 2, 3], "b": ["x", None, "z"]})
    chunked = pa.chunked_array([[1, 2], [3, None, 5]])
    array = pa.array([{"k": 1, "v": "a"}, None])
    empty = pa.table({"e": pa.array([], pa.int32())})
    return dict(table=table, batch=batch, chunked=chunked, array=array, empty=empty)
"""


def test_arrow_values_round_trip_as_ipc_streams(fresh) -> None:
    fresh.run(BUILD + """
import hibernate
globals().update(build())
hibernate.save("t.hib")
""")
    m = hibernate.inspect(fresh.path / "t.hib")
    names = ["table", "batch", "chunked", "array", "empty"]
    for name in names:
        assert m.groups[m.entry(name).group].serializer.name == "arrow", name
    got = fresh.json(BUILD + """
import json
import hibernate
r = hibernate.load("t.hib")
want = build()
print(json.dumps({"failed": dict(r.failed),
                  "equal": {n: globals()[n].equals(want[n]) for n in want},
                  "types": {n: type(globals()[n]).__name__ for n in want},
                  "schema": table.schema.equals(want["table"].schema, check_metadata=True),
                  "chunks": chunked.num_chunks}))
""")
    assert got["failed"] == {}
    assert got["equal"] == {n: True for n in names}
    assert got["types"] == {"table": "Table", "batch": "RecordBatch",
                            "chunked": "ChunkedArray", "array": "StructArray",
                            "empty": "Table"}
    assert got["schema"] is True and got["chunks"] == 2


def test_untrusted_arrow_data_loads_with_data_only(fresh) -> None:
    fresh.run(BUILD + """
import hibernate
globals().update(build())
hibernate.save("t.hib")
""", env={"HIBERNATE_KEY": "5354524e47522d0f1e2d3c4b5a69780f1e2d3c4b5a6978"})
    got = fresh.json(BUILD + """
import json
import hibernate
r = hibernate.load("t.hib", data_only=True)
print(json.dumps({"restored": sorted(r.restored),
                  "untrusted": sorted(n for n, s in r.skipped.items() if s.code == "untrusted"),
                  "equal": table.equals(build()["table"])}))
""")
    assert {"table", "batch", "chunked", "array", "empty"} <= set(got["restored"])
    assert got["untrusted"] == ["build"] and got["equal"] is True


def test_saving_streams_the_table_without_copying_it(tmp_path) -> None:
    """The IPC stream is written as it is made: the big column's bytes go to the file from
    the table's own memory (chunk by chunk), not through an in-memory copy of the stream."""
    import numpy as np

    from hibernate.format import BlobStream

    table = pa.table({"x": np.arange(4_000_000)})  # 32 MB
    seen: list[int] = []
    real_write = BlobStream.write

    def spy(self, data):  # type: ignore[no-untyped-def]
        seen.append(memoryview(data).nbytes)
        return real_write(self, data)

    BlobStream.write = spy  # type: ignore[method-assign]
    try:
        hibernate.save(tmp_path / "t.hib", {"table": table})
    finally:
        BlobStream.write = real_write  # type: ignore[method-assign]
    assert max(seen) == 32_000_000  # the column handed over whole, zero-copy, by pyarrow
    ns: dict[str, object] = {}
    hibernate.load(tmp_path / "t.hib", ns, mmap=True)
    assert ns["table"].equals(table)  # type: ignore[attr-defined]


def test_damaged_ipc_stream_is_a_value_error() -> None:
    ser, dumped = serializers.dump(pa.table({"x": [1, 2, 3]}))
    assert ser.name == "arrow"
    stream = bytearray(dumped.buffers[0])
    stream[8:16] = b"\xff" * 8
    with pytest.raises(ValueError):
        ser.load(dumped.meta, [stream])
    with pytest.raises(ValueError):
        ser.load({**dumped.meta, "rows": 4}, [bytearray(dumped.buffers[0])])


def test_polars_frames_and_series_round_trip_through_arrow(fresh) -> None:
    pytest.importorskip("polars")
    build = """
import polars as pl
def build():
    frame = pl.DataFrame({"a": [1, 2, None], "s": ["x", None, "z"],
                          "c": pl.Series(["u", "v", "u"], dtype=pl.Categorical),
                          "f": [1.5, 2.5, float("nan")],
                          # width 0: polars cannot read these back from Arrow by itself
                          "w": pl.Series([[], [], None], dtype=pl.Array(pl.Int64, 0))})
    return dict(frame=frame, series=pl.Series("height", [1.8, None, 1.6]),
                widthless=pl.Series("w0", [[], None], dtype=pl.Array(pl.Utf8, 0)))
"""
    fresh.run(build + """
import hibernate
globals().update(build())
hibernate.save("p.hib")
""", env={"HIBERNATE_KEY": "5354524e47522d0f1e2d3c4b5a69780f1e2d3c4b5a6978"})
    m = hibernate.inspect(fresh.path / "p.hib")
    assert {m.groups[m.entry(n).group].serializer.name
            for n in ("frame", "series", "widthless")} == {"polars"}
    got = fresh.json(build + """
import json
import hibernate
r = hibernate.load("p.hib", data_only=True)  # untrusted: polars data needs no code
want = build()
print(json.dumps({"restored": sorted(r.restored), "frame": frame.equals(want["frame"]),
                  "dtypes": [str(d) for d in frame.dtypes],
                  "series": series.equals(want["series"]) and series.name == "height",
                  "widthless": widthless.equals(want["widthless"])
                               and str(widthless.dtype) == "Array(String, shape=(0,))"}))
""")
    assert {"frame", "series", "widthless"} <= set(got["restored"])
    assert got["frame"] is True and got["series"] is True and got["widthless"] is True
    assert got["dtypes"] == ["Int64", "String", "Categorical", "Float64",
                             "Array(Int64, shape=(0,))"]
