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
