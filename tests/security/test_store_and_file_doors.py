"""Doors through stores and file metadata (trust issue, items 8 and 12):

- chunk digests and checkpoint ids become object paths: anything but hex is refused before
  any path is built (no ``objects/../..``, no HEAD that names a file outside the store, no
  ``hibernate checkout`` writing ``ID.hib`` outside the working directory);
- a file cannot declare more data than a bounded multiple of its size: refused before
  anything is allocated (measured on a child process); nor can a checkpoint, measured by
  the chunk objects it names counting every reference (a store deduplicates: one tiny
  object named a thousand times is a thousand objects' worth of data, not one);
- a pandas time zone is a name, never a path a time zone library would open;
- a save keeps the mode of the file it replaces.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import hibernate
from memory import child

from .craft import manifest_of, rewrap

STRANGER_KEY = "5354524e47522d0f1e2d3c4b5a69780f1e2d3c4b5a6978"  # someone else


def _record(store: Path, manifest: dict, cid: str = "0123456789abcdef") -> None:
    """An unsigned checkpoint record (format 2) holding ``manifest``."""
    body = json.dumps({"checkpoint": {"parent": None, "message": "m", "time": "t"},
                       "manifest": manifest,
                       "seal": {"key_id": "00" * 16, "mac": "00" * 32}}).encode()
    (store / "checkpoints").mkdir(parents=True, exist_ok=True)
    (store / "checkpoints" / f"{cid}.ckpt").write_bytes(b"HIBCKPT2" + bytes(48) + body)
    (store / "HEAD").write_text(cid)


def test_a_chunk_digest_cannot_name_a_path_outside_the_store(tmp_path: Path) -> None:
    hibernate.save(tmp_path / "s.hib", {"x": [1, 2, 3]})
    m = manifest_of((tmp_path / "s.hib").read_bytes())
    (tmp_path / "secret").write_bytes(b"outside the store")
    for blob in m["blobs"]:
        for c in blob["chunks"]:
            c["digest"] = "../../secret"
    store = tmp_path / "store"
    _record(store, m)
    with pytest.raises(hibernate.FormatError, match="64 hex"):
        hibernate.checkout(store, None, {}, data_only=True)


def test_head_cannot_name_a_checkpoint_outside_the_store(tmp_path: Path) -> None:
    store = tmp_path / "work" / "store"
    hibernate.checkpoint(store, {"x": 1})
    (store / "HEAD").write_text("../../../evil")
    with pytest.raises(hibernate.FormatError, match="HEAD"):
        hibernate.checkout(store, None, {})
    out = subprocess.run([sys.executable, "-m", "hibernate", "checkout", str(store)],
                         cwd=tmp_path / "work", capture_output=True, text=True)
    assert out.returncode != 0 and "HEAD" in out.stderr
    assert not list(tmp_path.rglob("evil*")), "a file was written from HEAD's text"
    with pytest.raises(hibernate.HibernateError, match="not a checkpoint id"):
        hibernate.checkout(store, "../x", {})


def test_a_tiny_file_declaring_gigabytes_is_refused_before_allocating(fresh) -> None:
    hibernate.save(fresh.path / "s.hib", {"x": np.arange(10)}, compression="fast")
    data = (fresh.path / "s.hib").read_bytes()
    m = manifest_of(data)
    chunk = m["blobs"][0]["chunks"][0]
    stored = data[chunk["offset"]:chunk["offset"] + chunk["stored"]]
    body, chunks = b"", []
    for _ in range(16):  # 16 chunks at their own offsets, each claiming 64 MiB: 1 GiB
        body += bytes(-(32 + len(body)) % 64)
        chunks.append(dict(chunk, offset=32 + len(body), raw=64 << 20, codec="zstd"))
        body += stored
    m["blobs"][0]["chunks"] = chunks
    assert "zstd" in m["features"]
    (fresh.path / "bomb.hib").write_bytes(rewrap(data, m, body=body))
    assert (fresh.path / "bomb.hib").stat().st_size < 16_000
    got = fresh.json(child("""
        import json, subprocess, sys
        import numpy  # its libraries are not what is measured
        import hibernate
        start = reset_peak()
        outcomes = []
        for call in (lambda: hibernate.load("bomb.hib", {}, data_only=True),
                     lambda: hibernate.inspect("bomb.hib"),
                     lambda: hibernate.open("bomb.hib")):
            try:
                call()
                outcomes.append("accepted")
            except hibernate.FormatError as e:
                outcomes.append(str(e))
        cli = [subprocess.run([sys.executable, "-m", "hibernate", verb, "bomb.hib"]
                              + (["--yes"] if verb == "trust" else []),
                              capture_output=True, text=True) for verb in ("verify", "trust")]
        print(json.dumps({"outcomes": outcomes, "grew": peak_growth(start),
                          "cli": [[p.returncode, p.stderr] for p in cli]}))
    """))
    assert all("more than 1024 times its size" in o for o in got["outcomes"]), got
    assert got["grew"] < 64 << 20, got
    assert all(rc == 2 and "1024 times" in err for rc, err in got["cli"]), got["cli"]


def test_your_own_compressible_file_loads_and_a_strangers_needs_the_setting(
        tmp_path: Path, monkeypatch) -> None:
    """The budget bounds what a hand-built file makes a reader allocate: a file signed with
    your key (you made it) is held to none, so your 160 MB of zeros load as they are; the
    same file from someone else is refused unless the setting allows it."""
    zeros = {"z": np.zeros(20_000_000)}  # 160 MB of zeros compress far past 1024x
    hibernate.save(tmp_path / "mine.hib", zeros, compression="small")
    out: dict = {}
    assert hibernate.load(tmp_path / "mine.hib", out).failed == {}
    assert out["z"].shape == (20_000_000,) and not out["z"].any()
    with monkeypatch.context() as m:
        m.setenv("HIBERNATE_KEY", STRANGER_KEY)
        hibernate.save(tmp_path / "theirs.hib", zeros, compression="small")
    with pytest.raises(hibernate.FormatError, match="HIBERNATE_MAX_EXPANSION"):
        hibernate.inspect(tmp_path / "theirs.hib")
    with pytest.raises(hibernate.FormatError, match="HIBERNATE_MAX_EXPANSION"):
        hibernate.load(tmp_path / "theirs.hib", {}, data_only=True)
    monkeypatch.setenv("HIBERNATE_MAX_EXPANSION", "100000")
    out = {}
    assert hibernate.load(tmp_path / "theirs.hib", out, data_only=True).failed == {}
    assert not out["z"].any()


def _dedup_bomb(store: Path, refs: int, stored: str) -> None:
    """A store whose checkpoint names one 4 MiB-of-zeros zstd object (about 150 bytes)
    ``refs`` times: an unsigned record written by hand. ``stored``: what the references
    record as the object's size, "zero" (as chunks reused from a store are recorded; the
    first keeps its size), "true" or "inflated" (the raw size)."""
    hibernate.checkpoint(store, {"z": np.zeros(1 << 19)}, compression="small")
    record = next((store / "checkpoints").iterdir())
    m = json.loads(record.read_bytes()[56:])["manifest"]
    record.unlink()
    c = m["blobs"][0]["chunks"][0]
    size = {"zero": 0, "true": c["stored"], "inflated": c["raw"]}[stored]
    m["blobs"][0]["chunks"] = [dict(c, stored=c["stored"] if i == 0 else size)
                               for i in range(refs)]
    m["groups"][0]["meta"]["shape"] = m["entries"][0]["shape"] = [refs << 19]
    m["entries"][0]["size"] = refs << 22
    _record(store, m)


BOMB_CHECKOUTS = """
    import json, resource
    import numpy  # its libraries are not what is measured
    import hibernate
    vm = _status("VmSize")
    resource.setrlimit(resource.RLIMIT_AS, (vm + (3 << 30), resource.RLIM_INFINITY))
    start = reset_peak()
    outcomes = []
    for call in (lambda: hibernate.checkout("store", None, {}, data_only=True),
                 lambda: hibernate.checkout("store", None, {}, trust=True),
                 lambda: hibernate.export_checkpoint("store", "0123", "out.hib")):
        try:
            report = call()
            outcomes.append(report if isinstance(report, str) else str(report.failed))
        except hibernate.HibernateError as e:
            outcomes.append(type(e).__name__ + ": " + str(e))
        except MemoryError:
            outcomes.append("MemoryError")
    print(json.dumps({"outcomes": outcomes, "grew": peak_growth(start)}))
"""


@pytest.mark.parametrize("stored", ["zero", "true"])
def test_a_store_naming_one_tiny_chunk_a_thousand_times_is_refused(fresh, stored: str
                                                                  ) -> None:
    _dedup_bomb(fresh.path / "store", 256, stored)  # 1 GiB declared
    on_disk = sum(f.stat().st_size for f in (fresh.path / "store").rglob("*") if f.is_file())
    assert on_disk < 80_000
    got = fresh.json(child(BOMB_CHECKOUTS))
    assert all(o.startswith("FormatError: the checkpoint declares") and
               "more than 1024 times" in o and "HIBERNATE_MAX_EXPANSION" in o
               for o in got["outcomes"]), got
    assert got["grew"] < 64 << 20, got


def test_claims_about_missing_objects_cannot_buy_budget_for_a_dedup_bomb(fresh) -> None:
    """A record's claims are checked only as objects are read, so a second entry that
    claims 1 GiB of chunk objects which do not exist raised the up-front budget enough to
    let the dedup bomb through (checkout grew by 1 GiB; found by a review). The reader
    decompresses only within 1024 times the stored bytes it really fetched."""
    store = fresh.path / "store"
    _dedup_bomb(store, 256, "zero")
    record = next((store / "checkpoints").iterdir())
    m = json.loads(record.read_bytes()[56:])["manifest"]
    y = np.arange(8.0)  # a second entry, with chunks claimed and never stored
    m["blobs"].append({"chunks": [{"digest": f"{i:064x}", "raw": 64 << 20,
                                   "stored": 64 << 20, "codec": "raw", "offset": 0}
                                  for i in range(16)]})
    group = dict(m["groups"][0], id=1, names=["y"], blobs=[len(m["blobs"]) - 1])
    group["meta"] = dict(group["meta"], shape=[y.size << 23])
    m["groups"].append(group)
    m["entries"].append(dict(m["entries"][0], name="y", group=1, shape=[y.size << 23],
                             size=1 << 30))
    _record(store, m)
    got = fresh.json(child("""
        import json, resource
        import numpy
        import hibernate
        resource.setrlimit(resource.RLIMIT_AS, (_status("VmSize") + (3 << 30), -1))
        start = reset_peak()
        out = {}
        report = hibernate.checkout("store", None, out, data_only=True)
        print(json.dumps({"failed": report.failed, "restored": sorted(out),
                          "grew": peak_growth(start)}))
    """))
    assert got["grew"] < 64 << 20, got
    assert got["restored"] == [] and "HIBERNATE_MAX_EXPANSION" in got["failed"]["z"], got


def test_a_chunk_that_claims_more_stored_bytes_than_its_object_fails(fresh) -> None:
    _dedup_bomb(fresh.path / "store", 64, "inflated")  # passes the budget, then is held to it
    got = fresh.json(child(BOMB_CHECKOUTS))
    assert "not the 4194304 its record says" in got["outcomes"][0], got
    assert "not the 4194304 its record says" in got["outcomes"][1], got
    assert got["grew"] < 64 << 20, got


def test_checkpoints_sharing_chunks_keep_loading(tmp_path: Path) -> None:
    """Chunks a checkpoint reuses from the store are recorded with stored 0: their objects'
    sizes are asked for, and a legitimate checkpoint loads."""
    store = tmp_path / "store"
    tiled = np.tile(np.arange(1000), 4000)  # 32 MB that compresses a few hundred times
    rng = np.random.default_rng(0).random(100_000)
    hibernate.checkpoint(store, {"t": tiled, "r": rng}, compression="fast")
    c2 = hibernate.checkpoint(store, {"t": tiled, "r": rng, "n": 1}, compression="fast")
    m = hibernate.checkpoints.Repo(store, None).read(c2.id)[1]
    assert c2.bytes_written < 10_000
    assert all(c.stored == 0 for b in m.blobs for c in b.chunks if c.raw > 100_000)
    for cid in (None, c2.id):
        out: dict = {}
        assert hibernate.checkout(store, cid, out).failed == {}
        np.testing.assert_array_equal(out["t"], tiled)
    hibernate.export_checkpoint(store, c2.id, tmp_path / "c2.hib")
    assert hibernate.load(tmp_path / "c2.hib", {}).failed == {}


def test_your_own_compressible_checkpoint_loads_and_a_strangers_needs_the_setting(
        tmp_path: Path, monkeypatch) -> None:
    store = tmp_path / "store"
    hibernate.checkpoint(store, {"z": np.zeros(20_000_000)}, compression="small")
    out: dict = {}
    assert hibernate.checkout(store, None, out).failed == {} and not out["z"].any()
    hibernate.export_checkpoint(store, hibernate.log(store)[0].id, tmp_path / "out.hib")
    assert hibernate.load(tmp_path / "out.hib", {}).failed == {}  # export: yours too
    theirs = tmp_path / "theirs"
    with monkeypatch.context() as m:
        m.setenv("HIBERNATE_KEY", STRANGER_KEY)
        hibernate.checkpoint(theirs, {"z": np.zeros(20_000_000)}, compression="small")
    with pytest.raises(hibernate.FormatError, match="HIBERNATE_MAX_EXPANSION"):
        hibernate.checkout(theirs, None, {}, data_only=True)
    monkeypatch.setenv("HIBERNATE_MAX_EXPANSION", "100000")
    out = {}
    assert hibernate.checkout(theirs, None, out, data_only=True).failed == {}
    assert out["z"].shape == (20_000_000,)


def test_a_pandas_time_zone_never_opens_a_file(fresh) -> None:
    import pandas as pd

    s = pd.Series(pd.date_range("2020", periods=3, tz="Europe/Paris"))
    hibernate.save(fresh.path / "s.hib", {"s": s})
    data = (fresh.path / "s.hib").read_bytes()
    m = manifest_of(data)
    text = json.dumps(m).replace('"Europe/Paris"', '"dateutil//etc/passwd"')
    assert "dateutil//etc/passwd" in text
    (fresh.path / "bad.hib").write_bytes(rewrap(data, text.encode()))
    got = fresh.json("""
        import json, sys
        opened = []
        sys.addaudithook(lambda ev, args: opened.append(str(args[0]))
                         if ev == "open" and "passwd" in str(args[0]) else None)
        import hibernate
        r = hibernate.load("bad.hib", {}, data_only=True)
        print(json.dumps({"failed": r.failed, "opened": opened}))
    """)
    assert got["opened"] == [] and "time zone" in got["failed"]["s"], got


def test_a_save_keeps_the_mode_of_the_file_it_replaces(tmp_path: Path) -> None:
    path = tmp_path / "private.hib"
    hibernate.save(path, {"x": 1})
    os.chmod(path, 0o600)
    hibernate.save(path, {"x": 2})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    new = tmp_path / "new.hib"
    old = os.umask(0o027)
    try:
        hibernate.save(new, {"x": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE(new.stat().st_mode) == 0o640  # 0666 less the umask
