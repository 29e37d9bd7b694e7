"""``data_only`` binds data only (trust issue, item 10): a file that maps the user's own
names to callables (``summarize -> builtins.exec``, ``clean -> os.system``, ``np -> os``)
binds none of them; they are listed as references, bound only when included by name."""

from __future__ import annotations

STRANGER = {"HIBERNATE_KEY": "5354524e47522d0f1e2d3c4b5a69780f1e2d3c4b5a6978"}


def test_references_do_not_replace_the_users_names(fresh) -> None:
    fresh.run("""
        import builtins, os
        import hibernate
        hibernate.save("refs.hib", {"summarize": builtins.exec, "clean": os.system,
                                    "np": os, "rows": [1, 2, 3]})
    """, env=STRANGER)
    got = fresh.json("""
        import json
        import hibernate
        def summarize(x):
            return "mine"
        def clean(x):
            return "mine"
        np = "my numpy"
        rows = None
        r = hibernate.load("refs.hib", data_only=True)
        print(json.dumps({"summarize": summarize(1), "clean": clean(1), "np": np,
                          "rows": rows,
                          "skipped": {n: [s.code, s.message] for n, s in r.skipped.items()}}))
    """)
    assert got["summarize"] == "mine" and got["clean"] == "mine" and got["np"] == "my numpy"
    assert got["rows"] == [1, 2, 3]
    assert got["skipped"]["clean"][0] == "reference" and "system" in got["skipped"]["clean"][1]
    assert {"summarize", "np"} <= {n for n, (c, _) in got["skipped"].items()
                                   if c == "reference"}
