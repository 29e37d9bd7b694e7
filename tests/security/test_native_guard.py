"""A native decoder's panic fails only its entry (trust issue, item 3): pyo3 raises a
``PanicException``, a ``BaseException`` that ``except Exception`` misses; loads turn any
non-``Exception`` from a decoder into a failed entry, while ``KeyboardInterrupt`` still
propagates and leaves the namespace untouched."""

from __future__ import annotations


def test_a_panic_fails_its_entry_and_an_interrupt_still_stops_the_load(fresh) -> None:
    fresh.run("""
        import polars as pl
        import hibernate
        frame = pl.DataFrame({"x": [1, 2, 3]})
        rows = [1, 2, 3]
        hibernate.save("s.hib")
    """)
    got = fresh.json("""
        import json
        import polars as pl
        import hibernate

        class PanicException(BaseException):  # what pyo3 raises when Rust panics
            pass

        def panics(*args, **kwargs):
            raise PanicException("thread panicked at src/lib.rs:1:1")

        pl.from_arrow = panics
        ns = {}
        r = hibernate.load("s.hib", ns, data_only=True)

        def interrupted(*args, **kwargs):
            raise KeyboardInterrupt
        pl.from_arrow = interrupted
        kept = {"rows": "mine"}
        try:
            hibernate.load("s.hib", kept)
            outcome = "finished"
        except KeyboardInterrupt:
            outcome = "interrupted"
        print(json.dumps({"failed": r.failed, "restored": sorted(ns), "outcome": outcome,
                          "kept": kept}))
    """)
    assert "PanicException" in got["failed"]["frame"] and got["restored"] == ["rows"]
    assert got["outcome"] == "interrupted" and got["kept"] == {"rows": "mine"}


def test_a_real_polars_panic_from_a_hand_built_file_fails_its_entry_everywhere(
        fresh, tmp_path) -> None:
    """A stranger's file whose polars column is a ``fixed_size_list[0]`` makes polars
    itself panic (no monkeypatching). ``load``, the lazy ``open()`` (what the viewer and
    ``%hibernate browse`` read through) and the viewer's page all report it as a failed
    entry; the process lives on and ``except Exception`` sees a hibernate error."""
    import blake3
    import pyarrow as pa

    from .craft import manifest_of, rewrap

    fresh.run("""
        import polars as pl, hibernate
        hibernate.save("s.hib", {"frame": pl.DataFrame({"x": [1]})})
    """)
    table = pa.table({"x": pa.array([[], []], pa.list_(pa.int64(), 0))})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    body = sink.getvalue().to_pybytes()
    data = (fresh.path / "s.hib").read_bytes()
    m = manifest_of(data)
    group = next(g for g in m["groups"] if g["serializer"]["name"] == "polars")
    m["blobs"] = [{"chunks": [{"offset": 64, "raw": len(body), "stored": len(body),
                               "codec": "raw", "digest": blake3.blake3(body).hexdigest()}]}]
    group["blobs"], group["meta"]["rows"], m["groups"] = [0], 2, [group]
    m["entries"] = [e for e in m["entries"] if e.get("group") == group["id"]]
    (fresh.path / "panic.hib").write_bytes(rewrap(data, m, body=bytes(32) + body))
    got = fresh.json("""
        import json, hibernate
        from hibernate.viewer import browse
        r = hibernate.load("panic.hib", {}, data_only=True)
        try:
            with hibernate.open("panic.hib", data_only=True) as snap:
                snap["frame"]
            opened = "returned"
        except Exception as e:
            opened = type(e).__name__ + ": " + str(e)
        page = browse("panic.hib").html
        print(json.dumps({"load": r.failed.get("frame", ""), "open": opened,
                          "page": "PanicException" in page}))
    """)
    assert "PanicException" in got["load"]
    assert got["open"].startswith("HibernateError") and "PanicException" in got["open"]
    assert got["page"]
