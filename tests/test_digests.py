"""Chunk digests: new files and stores use BLAKE3; SHA-256 files still read and import."""

from __future__ import annotations

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


def test_a_store_and_a_file_share_chunks_addressed_by_blake3(tmp_path: Path) -> None:
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
    chunks = [p for p in (store / "chunks").rglob("*") if p.is_file()]
    assert chunks and all(blake3.blake3(p.read_bytes()).hexdigest() == p.parent.name + p.name
                          for p in chunks)  # chunks/ab/cdef...: named by their BLAKE3
    assert first.id != imported.id


def test_a_sha256_file_imports_into_a_blake3_store(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(hibernate._api, "default_digest", lambda: "sha256")
    ns = {"data": np.arange(1_000_000, dtype=np.int64), "x": [1, 2]}
    hibernate.save(tmp_path / "s.hib", ns)
    assert hibernate.inspect(tmp_path / "s.hib").digest == "sha256"
    c = hibernate.import_checkpoint(tmp_path / "s.hib", tmp_path / "store")
    back: dict[str, object] = {}
    assert hibernate.checkout(tmp_path / "store", c.id, back).ok
    assert np.array_equal(back["data"], ns["data"]) and back["x"] == [1, 2]  # type: ignore
    assert hibernate.log(tmp_path / "store")[0].id == c.id


@pytest.mark.parametrize("algorithm", ["sha256", "blake3"])
def test_a_damaged_chunk_is_found_with_either_digest(tmp_path: Path, algorithm: str,
                                                    monkeypatch) -> None:
    path = tmp_path / "d.hib"
    if algorithm == "sha256":  # as where blake3 is not installed
        monkeypatch.setattr(hibernate._api, "default_digest", lambda: "sha256")
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
