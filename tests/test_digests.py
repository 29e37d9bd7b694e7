"""Chunk digests: new files use BLAKE3; SHA-256 files still read; stores stay SHA-256."""

from __future__ import annotations

import hashlib
from pathlib import Path

import blake3
import numpy as np
import pytest

import hibernate


def test_new_files_digest_chunks_with_blake3(tmp_path: Path) -> None:
    data = np.arange(3_000_000, dtype=np.int64)  # 24 MB: several chunks
    hibernate.save(tmp_path / "b.hib", {"data": data, "x": [1, 2]})
    m = hibernate.inspect(tmp_path / "b.hib")
    assert m.digest == "blake3"
    raw = (tmp_path / "b.hib").read_bytes()
    chunks = [c for b in m.blobs for c in b.chunks]
    assert len(chunks) > 3
    for c in chunks:  # checked with the blake3 package itself, not hibernate's code
        assert blake3.blake3(raw[c.offset:c.offset + c.raw]).hexdigest() == c.digest


def test_a_blake3_file_is_read_with_a_clear_error_where_blake3_is_missing(fresh) -> None:
    hibernate.save(fresh.path / "b.hib", {"data": np.arange(10), "x": 1})
    got = fresh.json("""
        import json, sys
        sys.modules["blake3"] = None  # as if the package were not installed
        import hibernate
        m = hibernate.inspect("b.hib")  # reading the manifest needs no chunk digest
        try:
            hibernate.load("b.hib", {})
            outcome = "loaded"
        except hibernate.FormatError as e:
            outcome = str(e)
        hibernate.save("s.hib", {"y": 2})  # and saving falls back to SHA-256
        ns = {}
        hibernate.load("s.hib", ns)
        print(json.dumps({"entries": [e.name for e in m.entries], "outcome": outcome,
                          "fallback": hibernate.inspect("s.hib").digest, "y": ns["y"]}))
    """)
    assert got["entries"] == ["data", "x"]
    assert "pip install blake3" in got["outcome"]
    assert got["fallback"] == "sha256" and got["y"] == 2


def test_checkpoint_import_of_a_blake3_file_addresses_chunks_by_sha256(tmp_path: Path) -> None:
    ns = {"data": np.arange(2_000_000, dtype=np.int64), "x": 1}
    store = tmp_path / "store"
    first = hibernate.checkpoint(store, ns)
    hibernate.save(tmp_path / "same.hib", ns)
    assert hibernate.inspect(tmp_path / "same.hib").digest == "blake3"
    imported = hibernate.import_checkpoint(tmp_path / "same.hib", store)
    assert imported.bytes_written == 0  # the same bytes: every chunk was already there
    back: dict[str, object] = {}
    hibernate.checkout(store, imported.id, back)
    assert np.array_equal(back["data"], ns["data"]) and back["x"] == 1  # type: ignore[arg-type]
    objects = [p for p in (store / "objects").rglob("*") if p.is_file()]
    assert objects and all(hashlib.sha256(p.read_bytes()).hexdigest() == p.parent.name + p.name
                           for p in objects)  # objects/ab/cdef...: named by their SHA-256
    assert first.id != imported.id


@pytest.mark.parametrize("algorithm", ["sha256", "blake3"])
def test_a_damaged_chunk_is_found_with_either_digest(tmp_path: Path, algorithm: str) -> None:
    path = tmp_path / "d.hib"
    if algorithm == "sha256":
        hibernate.export_checkpoint(*_one_checkpoint(tmp_path), path)
    else:
        hibernate.save(path, {"data": np.arange(1_000_000), "x": 1})
    m = hibernate.inspect(path)
    assert m.digest == algorithm
    raw = bytearray(path.read_bytes())
    c = m.blobs[m.groups[m.entry("data").group].blobs[0]].chunks[0]
    raw[c.offset + 100] ^= 0xFF
    path.write_bytes(bytes(raw))
    ns: dict[str, object] = {}
    report = hibernate.load(path, ns)
    assert "data" in report.failed and "digest" in report.failed["data"]
    assert ns == {"x": 1}


def _one_checkpoint(tmp_path: Path) -> tuple[Path, str]:
    store = tmp_path / "s"
    c = hibernate.checkpoint(store, {"data": np.arange(1_000_000), "x": 1})
    return store, c.id
