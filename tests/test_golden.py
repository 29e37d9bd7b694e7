"""Every hibernate reads the files and stores of every released format version
(tests/golden/), and an older hibernate refuses a newer file with a clear VersionError."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import hibernate

GOLDEN = Path(__file__).parent / "golden"
OLD_READER = GOLDEN / "readers" / "hibernate-0.1.0-py3-none-any.whl"


def _maker() -> Any:
    spec = importlib.util.spec_from_file_location("make_golden", GOLDEN / "make_golden.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def golden_key(monkeypatch) -> None:
    monkeypatch.setenv("HIBERNATE_KEY", _maker().GOLDEN_KEY)


def _check_v1_values(ns: dict[str, Any], want: dict[str, Any]) -> None:
    for name in ("ints", "fortran", "text", "compressible"):
        np.testing.assert_array_equal(ns[name], want[name])
        assert ns[name].dtype == want[name].dtype
    assert ns["fortran"].flags.f_contiguous
    assert ns["data"] == want["data"]
    assert ns["holder"]["ref"] is ns["shared"]
    assert ns["box"].twice() == 42 and type(ns["box"]) is ns["Box"]
    assert ns["over"](4) and ns["over"].__globals__ is ns
    assert ns["np"] is np and ns["OrderedDict"] is __import__("collections").OrderedDict


def test_golden_v1_file_still_loads() -> None:
    """Signed with a passphrase key, which 0.2 refuses: the file reads as someone else's,
    and is trusted the documented way (the trust list)."""
    path = GOLDEN / "v1.hib"
    m = hibernate.inspect(path)
    assert m.signature == "foreign" and m.format_version == 1
    with pytest.raises(hibernate.UntrustedFileError):
        hibernate.load(path, {})
    hibernate.trust.add_trusted(m.manifest_digest, "golden v1")
    assert {c.codec for b in m.blobs for c in b.chunks} == {"raw", "zstd"}
    assert {e.how for e in m.entries if e.kind == "value"} == {"stored"}
    ns: dict = {}
    assert hibernate.load(path, ns).failed == {}
    _check_v1_values(ns, _maker().build())


def test_golden_v2_file_loads_with_every_serializer() -> None:
    import pandas as pd
    import polars as pl
    import pyarrow as pa

    path = GOLDEN / "v2.hib"
    m = hibernate.inspect(path)
    assert m.signature == "valid" and m.format_version == 2 and m.digest == "blake3"
    assert set(m.features) == {"blake3", "zstd", "placeholders"}
    assert {g.serializer.name for g in m.groups} == {"numpy", "pandas", "arrow", "polars",
                                                     "pickle"}
    assert any(g.placeholders for g in m.groups)
    ns: dict = {}
    assert hibernate.load(path, ns).failed == {}
    want = _maker().build_v2()
    _check_v1_values(ns, want)
    pd.testing.assert_frame_equal(ns["frame"], want["frame"])
    pd.testing.assert_series_equal(ns["series"], want["series"])
    assert ns["table"].equals(want["table"]) and isinstance(ns["table"], pa.Table)
    assert ns["pframe"].equals(want["pframe"]) and isinstance(ns["pframe"], pl.DataFrame)
    assert ns["pair"][0] is ns["shared"]
    assert isinstance(ns["pair"][1], hibernate.Placeholder)
    data_only: dict = {}  # the code-free entries load from it with data_only too
    hibernate.load(path, data_only, data_only=True, include=["frame", "table", "ints"])
    assert set(data_only) == {"frame", "table", "ints"}


def test_golden_stores_of_both_versions_check_out(tmp_path: Path) -> None:
    for name, note in (("v1-store", "second"), ("v2-store", None)):
        store = tmp_path / name  # a copy: checkout moves HEAD
        subprocess.run(["cp", "-r", str(GOLDEN / name), str(store)], check=True)
        history = hibernate.log(store)
        assert [c.message for c in history] == ["second", "first"]
        trust = name == "v1-store"  # signed with a passphrase key, refused since 0.2
        newest: dict = {}
        assert hibernate.checkout(store, None, newest, trust=trust).failed == {}
        older: dict = {}
        assert hibernate.checkout(store, history[1].id, older, trust=trust).failed == {}
        assert newest["arr"][0] == -1 and older["arr"][0] == 0
        assert (newest["note"] == note) if note else newest["data"] == {"k": "second"}
        exported = tmp_path / f"{name}.hib"  # an old store's checkpoint exports as format 2
        hibernate.export_checkpoint(store, history[0].id, exported)
        m = hibernate.inspect(exported)
        # a copy keeps its signature; one that must change is signed only if it was yours
        assert m.format_version == 2 and m.signature == ("unsigned" if trust else "valid")
        again: dict = {}
        assert hibernate.load(exported, again, trust=trust).failed == {}
        np.testing.assert_array_equal(again["arr"], newest["arr"])


def test_hibernate_0_1_refuses_a_v2_file_with_a_version_error(tmp_path: Path) -> None:
    """The released reader (format 1 only), run from its own wheel in a fresh process."""
    old = tmp_path / "old"
    with zipfile.ZipFile(OLD_READER) as z:
        z.extractall(old)
    code = (
        "import hibernate, json\n"
        "assert hibernate.__version__ == '0.1.0', hibernate.__file__\n"
        f"try:\n    hibernate.load({str(GOLDEN / 'v2.hib')!r}, {{}})\n"
        "except hibernate.HibernateError as e:\n"
        "    print(json.dumps([type(e).__name__, str(e)]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": str(old), "HIBERNATE_KEY": "x" * 32,
                              "PATH": "/usr/bin:/bin"}, check=True)
    kind, message = __import__("json").loads(out.stdout)
    assert kind == "VersionError"
    assert "version 2" in message and "upgrade hibernate" in message
