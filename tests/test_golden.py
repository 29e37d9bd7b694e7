"""Every hibernate reads the files of every released format version (tests/golden/)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import hibernate

GOLDEN = Path(__file__).parent / "golden"


def _expected() -> dict:
    spec = importlib.util.spec_from_file_location("make_golden", GOLDEN / "make_golden.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build()  # type: ignore[no-any-return]


@pytest.mark.parametrize("path", sorted(GOLDEN.glob("v*.hib")), ids=lambda p: p.name)
def test_golden_file_still_loads(path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HIBERNATE_KEY", "hibernate-golden-key")
    m = hibernate.inspect(path)
    assert m.signature == "valid" and m.format_version <= 1
    assert {c.codec for b in m.blobs for c in b.chunks} == {"raw", "zstd"}
    ns: dict = {}
    r = hibernate.load(path, ns)
    assert r.failed == {}
    want = _expected()
    for name in ("ints", "fortran", "text", "compressible"):
        np.testing.assert_array_equal(ns[name], want[name])
        assert ns[name].dtype == want[name].dtype
    assert ns["fortran"].flags.f_contiguous
    assert ns["data"] == want["data"]
    assert ns["holder"]["ref"] is ns["shared"]
    assert ns["box"].twice() == 42 and type(ns["box"]) is ns["Box"]
    assert ns["over"](4) and ns["over"].__globals__ is ns
    assert ns["np"] is np and ns["OrderedDict"] is __import__("collections").OrderedDict
