"""pyarrow tables: their buffers go out of band (no copy into the stream) and round-trip."""

from __future__ import annotations

import pytest

import hibernate

pa = pytest.importorskip("pyarrow")


def test_arrow_table_buffers_are_out_of_band_and_round_trip(fresh) -> None:
    fresh.run("""
        import hibernate
        import numpy as np
        import pyarrow as pa
        table = pa.table({"x": np.arange(2_000_000),
                          "s": pa.array([f"v{i % 100}" for i in range(2_000_000)]),
                          "n": pa.array([1.5, None] * 1_000_000)})
        hibernate.save("t.hib")
    """)
    m = hibernate.inspect(fresh.path / "t.hib")
    group = m.groups[m.entry("table").group]
    stream = m.blobs[group.blobs[0]]
    assert stream.length < 4096 and len(group.blobs) >= 3     # the data is out of band
    got = fresh.json("""
        import hibernate, json
        import numpy as np
        import pyarrow as pa
        hibernate.load("t.hib")
        expected = pa.table({"x": np.arange(2_000_000),
                             "s": pa.array([f"v{i % 100}" for i in range(2_000_000)]),
                             "n": pa.array([1.5, None] * 1_000_000)})
        print(json.dumps([table.equals(expected), table.schema.equals(expected.schema)]))
    """)
    assert got == [True, True]
