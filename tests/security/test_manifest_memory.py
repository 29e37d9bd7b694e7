"""Memory before validation, the manifest (trust issue, item 12): ``inspect`` peaks at a small
multiple of the manifest's size, whatever the manifest holds.

Python's JSON parser turns three bytes (``{},``) into a 64-byte dict: a hand-built manifest of
empty containers or short strings took 27 times its size to read (60 MiB: 1.7 GB). The reader
now bounds that cost from counts of the manifest's structural bytes before parsing, and refuses
a manifest built to exceed it. Measured on a child process: refused manifests cost about the
bytes read; the densest manifest that is still accepted, and a real one, stay under
``BOUND`` times the manifest's size.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import hibernate
from memory import child

from .craft import manifest_of, rewrap

SIZE = 16 << 20
BOUND = 14  # times the manifest's size (measured: about 12.6 for a real one, 11 for numbers)
MEASURE = """
    import json, os, struct
    import hibernate
    from hibernate import trust
    with open(os.environ["MANIFEST_FILE"], "rb") as f:
        f.seek(-128, 2)
        size = struct.unpack("<QQ", f.read(16))[1]
    trust.user_key().id  # the key's scrypt (32 MiB, whatever the file) before the measure
    start = reset_peak()
    try:
        m = hibernate.inspect(os.environ["MANIFEST_FILE"])
        outcome = f"read {len(m.entries)} entries"
    except hibernate.FormatError as e:
        outcome = str(e)
    print(json.dumps({"outcome": outcome, "ratio": peak_growth(start) / size}))
"""


def _padded(base: bytes, unit: str) -> bytes:
    """``base``'s manifest with a session field holding ``unit`` repeated to SIZE bytes."""
    m = manifest_of(base)
    m["session"]["padding"] = "@@"
    text = json.dumps(m).replace('"@@"', "[" + unit * (SIZE // len(unit)) + "0]")
    return rewrap(base, text.encode())


def _inspect(fresh, path: Path) -> dict:  # type: ignore[no-untyped-def, type-arg]
    got = fresh.json(child(MEASURE), env={"MANIFEST_FILE": str(path)})
    assert isinstance(got, dict)
    return got


def test_a_manifest_built_to_cost_memory_is_refused_before_parsing(fresh) -> None:
    hibernate.save(fresh.path / "s.hib", {"x": 1})
    base = (fresh.path / "s.hib").read_bytes()
    for name, unit in {"dicts": "{},", "lists": "[],", "strings": '"ab",',
                       "nested": "[{}],"}.items():
        (fresh.path / f"{name}.hib").write_bytes(_padded(base, unit))
        got = _inspect(fresh, fresh.path / f"{name}.hib")
        assert "times its size in memory" in got["outcome"], (name, got)
        assert got["ratio"] < 3, (name, got)  # the bytes read, and nothing parsed


def test_the_densest_accepted_manifest_stays_within_the_bound(fresh) -> None:
    hibernate.save(fresh.path / "s.hib", {"x": 1})
    base = (fresh.path / "s.hib").read_bytes()
    # numbers are the densest values the estimate accepts: each is a fresh int object
    for name, unit in {"ints": "1000,", "floats": "1e99,", "mixed": '1000,"abcdefgh",'
                       }.items():
        (fresh.path / f"{name}.hib").write_bytes(_padded(base, unit))
        got = _inspect(fresh, fresh.path / f"{name}.hib")
        if got["outcome"].startswith("read"):
            assert got["ratio"] < BOUND, (name, got)
        else:
            assert "times its size in memory" in got["outcome"], (name, got)


def test_a_real_manifest_of_many_entries_is_read_within_the_bound(fresh) -> None:
    ns: dict[str, object] = {}
    for i in range(12_000):
        ns[f"n{i}"] = i * 1000
        ns[f"s{i}"] = f"text {i}"
        ns[f"a{i}"] = np.arange(3)
    hibernate.save(fresh.path / "many.hib", ns)
    got = _inspect(fresh, fresh.path / "many.hib")
    assert got["outcome"] == "read 36000 entries", got
    assert got["ratio"] < BOUND, got
