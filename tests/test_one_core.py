"""One pipeline for files and checkpoint stores: what it promises users.

- a value that fails part-way leaves no bytes behind, and its group keeps the rest
  (placeholders stand in for what could not be stored);
- stores compress like files, and deduplicate on the uncompressed content;
- export and import copy chunks and the signature, never re-serialize, never re-sign what
  was not trusted (the `checkout --output` attack of the issue);
- checkout and load share trust, data_only, mmap and progress behaviour;
- the header names what a reader must support.
"""

from __future__ import annotations

import struct
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import hibernate

STRANGER = "5354524e47522d0f1e2d3c4b5a69780f1e2d3c4b5a6978"  # another valid key: someone else


def chunk_files(store: Path) -> dict[str, int]:
    return {str(p.relative_to(store)): p.stat().st_size
            for p in (store / "chunks").rglob("*") if p.is_file()}


# ---- no dead bytes; a group keeps what it can -------------------------------------------

def test_big_array_beside_an_unpicklable_member_costs_its_size_once(fresh) -> None:
    got = fresh.json("""
        import json, os, socket
        import numpy as np
        import hibernate
        arr = np.arange(4_000_000, dtype=np.float64)     # 32 MB
        pair = [arr, socket.socket()]
        r = hibernate.save("s.hib")
        print(json.dumps({"size": os.path.getsize("s.hib"), "nbytes": arr.nbytes,
                          "skipped": sorted(n for n, s in r.skipped.items()
                                            if s.code != "dunder"),
                          "lost": {n: [p.message for p in v] for n, v in
                                   r.placeholders.items()}}))
    """)
    assert got["size"] < got["nbytes"] + 1_000_000, got  # was four times it
    assert got["skipped"] == [] and list(got["lost"]) == ["arr, pair"]
    back = fresh.json("""
        import json
        import hibernate
        r = hibernate.load("s.hib")
        try:
            pair[1].connect(("127.0.0.1", 9))
            used = "no error"
        except hibernate.PlaceholderError as e:
            used = str(e)
        print(json.dumps({"same": pair[0] is arr, "failed": r.failed, "used": used,
                          "repr": repr(pair[1]), "attr": hasattr(pair[1], "connect")}))
    """)
    assert back["same"] and back["failed"] == {}
    assert "socket.socket" in back["used"] and "not saved" in back["used"]
    assert "placeholder" in back["repr"].lower() and back["attr"] is False


def test_placeholders_load_with_data_only_from_an_untrusted_file(fresh) -> None:
    fresh.run("""
        import socket
        import hibernate
        box = {"n": 1, "lock": socket.socket()}
        hibernate.save("s.hib")
    """)
    got = fresh.json("""
        import json
        import hibernate
        r = hibernate.load("s.hib", data_only=True)
        print(json.dumps({"box": "box" in r.restored, "n": box["n"],
                          "lock": type(box["lock"]).__name__}))
    """, env={"HIBERNATE_KEY": STRANGER})
    assert got == {"box": True, "n": 1, "lock": "Placeholder"}


def test_a_failed_value_leaves_no_chunks_in_a_store(tmp_path: Path) -> None:
    store = tmp_path / "store"
    ns = {"arr": np.arange(1_000_000.0)}
    hibernate.checkpoint(store, ns)
    before = chunk_files(store)

    class Bad:
        def __reduce__(self) -> object:
            raise RuntimeError("no")

    ns2 = {"arr": ns["arr"], "bad": [np.arange(2_000_000.0) + 7, Bad()]}
    ns2["gen"] = (i for i in range(3))
    c = hibernate.checkpoint(store, ns2)
    after = chunk_files(store)
    new = set(after) - set(before)
    # only the 16 MB array inside `bad` (its group was salvaged) and a small stream are new
    assert sum(after[k] for k in new) < 16_000_000 + 200_000
    out: dict = {}
    assert hibernate.checkout(store, c.id, out).failed == {}
    np.testing.assert_array_equal(out["bad"][0], ns2["bad"][0])
    assert isinstance(out["bad"][1], hibernate.Placeholder) and "gen" not in out


# ---- compression in stores, dedup on content ----------------------------------------

def test_stores_compress_and_deduplicate_on_uncompressed_content(tmp_path: Path) -> None:
    store = tmp_path / "store"
    ns = {"zeros": np.zeros(3_000_000), "x": list(range(1000))}
    c1 = hibernate.checkpoint(store, ns, compression="fast")
    files = chunk_files(store)
    assert any(k.endswith(".zst") for k in files)
    assert sum(files.values()) < ns["zeros"].nbytes / 20
    c2 = hibernate.checkpoint(store, ns)                   # raw now: the same content
    assert c2.bytes_written == 0 and chunk_files(store) == files
    for cid in (c1.id, c2.id):
        out: dict = {}
        assert hibernate.checkout(store, cid, out).failed == {}
        np.testing.assert_array_equal(out["zeros"], ns["zeros"])


# ---- export / import keep bytes and signatures ----------------------------------------

def test_export_and_import_keep_the_signature_and_never_reserialize(tmp_path: Path) -> None:
    store = tmp_path / "store"
    c = hibernate.checkpoint(store, {"a": np.arange(2_000_000), "d": {"k": 1}},
                             compression="fast")
    path = tmp_path / "c.hib"
    hibernate.export_checkpoint(store, c.id, path)
    m = hibernate.inspect(path)
    assert m.signature == "valid" and "zstd" in m.features
    source = hibernate.checkpoints.Repo(store, None).read(c.id)[1]
    assert m.mac == source.mac and m.manifest_digest == source.manifest_digest
    again = hibernate.import_checkpoint(path, store)
    assert again.bytes_written == 0                         # every chunk was there
    copied = hibernate.checkpoints.Repo(store, None).read(again.id)[1]
    assert copied.mac == source.mac and copied.signature == "valid"


# ---- checkout behaves as load ---------------------------------------------------------

def test_checkout_has_loads_data_only_mmap_and_progress(tmp_path: Path, monkeypatch,
                                                         capsys) -> None:
    store = tmp_path / "store"
    hibernate.checkpoint(store, {"arr": np.arange(3_000_000), "obj": {"k": {1, 2}}})
    with pytest.raises(ValueError, match="mmap"):
        hibernate.checkout(store, None, {}, mmap=True)
    monkeypatch.setenv("HIBERNATE_KEY", STRANGER)
    monkeypatch.setattr("hibernate._progress.DELAY", 0.0)
    out: dict = {}
    r = hibernate.checkout(store, None, out, data_only=True, progress=True)
    assert set(out) == {"arr", "obj"} and out["obj"] == {"k": {1, 2}}
    assert r.signature == "foreign" and not r.trusted
    assert "loading" in capsys.readouterr().err


# ---- the header names what a reader needs ------------------------------------------

def test_an_unknown_feature_bit_is_a_version_error_naming_the_reader(tmp_path: Path) -> None:
    path = tmp_path / "s.hib"
    hibernate.save(path, {"x": 1})
    data = bytearray(path.read_bytes())
    bits = struct.unpack_from("<I", data, 12)[0]
    struct.pack_into("<I", data, 12, bits | 1 << 20)
    data[16:32] = b"7.1.0".ljust(16, b"\0")
    path.write_bytes(bytes(data))
    with pytest.raises(hibernate.VersionError, match="hibernate 7.1.0"):
        hibernate.inspect(path)


def test_concurrent_checkpoints_into_one_store_all_land(tmp_path: Path) -> None:
    store = tmp_path / "store"
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            hibernate.checkpoint(store, {"i": i, "a": np.full(500_000, i)})
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(hibernate.log(store, all=True)) == 4


def test_verify_checks_every_chunk_of_a_store_once(tmp_path: Path) -> None:
    store = tmp_path / "store"
    hibernate.checkpoint(store, {"a": np.arange(200_000), "b": [1, 2]})
    hibernate.checkpoint(store, {"a": np.arange(200_000) + 1, "b": [1, 2]})
    cli = [sys.executable, "-m", "hibernate", "verify", str(store)]
    ok = subprocess.run(cli, capture_output=True, text=True)
    assert ok.returncode == 0 and "OK; 2 checkpoints" in ok.stdout
    victim = max((store / "chunks").rglob("*"), key=lambda p: p.stat().st_size
                 if p.is_file() else -1)
    data = bytearray(victim.read_bytes())
    data[100] ^= 0xFF
    victim.write_bytes(bytes(data))
    bad = subprocess.run(cli, capture_output=True, text=True)
    assert bad.returncode == 1 and "does not match its digest" in bad.stdout
    assert ": a" in bad.stdout and "1 damaged" in bad.stdout


def test_sections_a_later_version_adds_survive_export_and_import(tmp_path: Path) -> None:
    """Room in format 2: top-level sections and entry fields this version does not define
    are kept as they were, so copies keep their signature."""
    from hibernate.format import Manifest, canonical_bytes

    d = {"format_version": 2, "digest": "blake3", "features": ["blake3"], "session": {},
         "entries": [{"name": "x", "kind": "value", "how": "stored", "type": "int",
                      "size": 1, "group": 0, "replay": {"cells": [3, 7]}}],
         "groups": [{"id": 0, "names": ["x"], "serializer": {"name": "pickle", "version": 1,
                                                            "config": {}},
                     "meta": {}, "blobs": []}],
         "blobs": [], "environment": {"cwd": "/somewhere"}}
    m = Manifest.from_dict(d)
    assert m.sections == {"environment": {"cwd": "/somewhere"}}
    assert m.entries[0].extra == {"replay": {"cells": [3, 7]}}
    assert canonical_bytes(m.to_dict()) == canonical_bytes(d)
