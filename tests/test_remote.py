"""Remote storage through fsspec: memory:// for speed, and a real S3 endpoint (moto's
server on 127.0.0.1) for the behaviour that only object storage has."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

import hibernate

pytest.importorskip("fsspec")


def test_memory_round_trip_and_lazy_open() -> None:
    url = f"memory://bucket/{uuid.uuid4().hex}/s.hib"
    big = np.arange(2_000_000, dtype=np.float64)
    hibernate.save(url, {"big": big, "small": [1, 2, 3]})
    out: dict = {}
    r = hibernate.load(url, out)
    assert r.signature == "valid" and out["small"] == [1, 2, 3]
    np.testing.assert_array_equal(out["big"], big)
    with hibernate.open(url) as snap:
        opened = snap.bytes_read
        assert snap["small"] == [1, 2, 3]
        assert snap.bytes_read - opened < 4096          # only the small value's bytes
    assert hibernate.inspect(url).entry("big").shape == (2_000_000,)


def test_memory_failed_save_publishes_nothing_and_keeps_the_old(monkeypatch) -> None:
    import fsspec

    from hibernate.format import ChunkWriter

    url = f"memory://bucket/{uuid.uuid4().hex}/s.hib"
    hibernate.save(url, {"v": 1})
    before = fsspec.filesystem("memory").cat_file(url.removeprefix("memory://"))
    calls = {"n": 0}
    original = ChunkWriter.add_blob

    def failing(self, data):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("the network went away")
        return original(self, data)

    monkeypatch.setattr(ChunkWriter, "add_blob", failing)
    with pytest.raises(OSError):
        hibernate.save(url, {"a": np.zeros(100_000), "b": np.ones(100_000)})
    assert fsspec.filesystem("memory").cat_file(url.removeprefix("memory://")) == before


# ---- a real S3 endpoint (the `s3` fixture: tests/conftest.py) ---------------------

def _uploads(client) -> list:  # type: ignore[no-untyped-def]
    return client.list_multipart_uploads(Bucket="sessions").get("Uploads", [])


def test_s3_round_trip_in_a_fresh_process(s3, fresh) -> None:
    opts = json.dumps(s3["options"])
    fresh.run(f"""
        import hibernate, json
        import numpy as np
        arrays = {{f"a{{i}}": np.random.default_rng(i).standard_normal(1_500_000)
                  for i in range(3)}}
        table = {{"k": list(range(1000))}}
        def total():
            return sum(table["k"])
        hibernate.save("s3://sessions/run/s.hib", storage_options=json.loads({opts!r}))
    """)
    got = fresh.json(f"""
        import hibernate, json
        import numpy as np
        opts = json.loads({opts!r})
        r = hibernate.load("s3://sessions/run/s.hib", storage_options=opts)
        ok = all(np.array_equal(arrays[f"a{{i}}"],
                 np.random.default_rng(i).standard_normal(1_500_000)) for i in range(3))
        part = {{}}
        hibernate.load("s3://sessions/run/s.hib", part, include=["table"],
                       storage_options=opts)
        print(json.dumps({{"ok": ok, "total": total(), "sig": r.signature,
                          "part": sorted(part)}}))
    """)
    assert got == {"ok": True, "total": 499500, "sig": "valid", "part": ["table"]}
    assert _uploads(s3["client"]) == []


def test_s3_lazy_open_fetches_only_what_is_accessed(s3) -> None:
    url = "s3://sessions/lazy/s.hib"
    hibernate.save(url, {"big": np.zeros(3_000_000), "x": np.arange(1000.0)},
                   storage_options=s3["options"])
    size = s3["client"].head_object(Bucket="sessions", Key="lazy/s.hib")["ContentLength"]
    with hibernate.open(url, storage_options=s3["options"]) as snap:
        after_open = snap.bytes_read
        np.testing.assert_array_equal(snap["x"], np.arange(1000.0))
        fetched = snap.bytes_read
    assert after_open < 4096                       # header, trailer and manifest
    assert fetched - after_open == 8000            # exactly x's bytes
    assert size > 24_000_000
    m = hibernate.inspect(url, storage_options=s3["options"])
    assert {e.name for e in m.entries} == {"big", "x"}


def test_s3_exception_mid_upload_leaves_no_object_and_no_upload(s3, monkeypatch) -> None:
    from hibernate.format import ChunkWriter

    url = "s3://sessions/fail/s.hib"
    original = ChunkWriter.add_blob
    calls = {"n": 0}

    def failing(self, data):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:  # after ~16 MB: parts of a multipart upload are already up
            raise RuntimeError("disk on fire")
        return original(self, data)

    monkeypatch.setattr(ChunkWriter, "add_blob", failing)
    arrays = {f"a{i}": np.full(1_000_000, i, dtype=np.float64) for i in range(3)}
    with pytest.raises(RuntimeError, match="disk on fire"):
        hibernate.save(url, arrays, storage_options=s3["options"])
    listed = s3["client"].list_objects_v2(Bucket="sessions", Prefix="fail/")
    assert listed.get("KeyCount", 0) == 0
    assert _uploads(s3["client"]) == []


def test_s3_failed_save_keeps_the_previous_object(s3, monkeypatch) -> None:
    from hibernate.format import FileSink

    url = "s3://sessions/keep/s.hib"
    hibernate.save(url, {"version": 1}, storage_options=s3["options"])
    with monkeypatch.context() as patch:
        patch.setattr(FileSink, "finish",
                      lambda self, m, k: (_ for _ in ()).throw(KeyboardInterrupt()))
        with pytest.raises(KeyboardInterrupt):
            hibernate.save(url, {"version": 2, "big": np.ones(2_000_000)},
                           storage_options=s3["options"])
    out: dict = {}
    hibernate.load(url, out, storage_options=s3["options"])
    assert out == {"version": 1} and _uploads(s3["client"]) == []


def test_s3_cli_with_options_and_abandoned_upload_cleanup(s3, tmp_path: Path) -> None:
    url = "s3://sessions/cli/s.hib"
    hibernate.save(url, {"x": [1, 2]}, storage_options=s3["options"])
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": s3["endpoint"]}
    o = []  # credentials and endpoint come from the environment, the usual fsspec way
    out = subprocess.run([sys.executable, "-m", "hibernate", "inspect", url, *o],
                         capture_output=True, text=True, env=env, check=False)
    assert out.returncode == 0, out.stderr
    assert "x" in out.stdout and "signature valid" in out.stdout
    # An upload abandoned by a killed writer: started, never completed.
    s3["client"].create_multipart_upload(Bucket="sessions", Key="cli/dead.hib")
    assert len(_uploads(s3["client"])) == 1
    # (moto reports every upload as started in 2010, so --older-than's sparing of recent
    # uploads cannot be shown against it)
    done = subprocess.run([sys.executable, "-m", "hibernate", "abort-uploads",
                           "s3://sessions/cli"], capture_output=True, text=True, env=env,
                          check=False)
    assert done.returncode == 0 and "cli/dead.hib" in done.stdout
    assert _uploads(s3["client"]) == []


def test_memory_checkpoint_store() -> None:
    store = f"memory://ckpt/{uuid.uuid4().hex}"
    ns = {"big": np.zeros(1_000_000), "n": 1}
    c1 = hibernate.checkpoint(store, ns)
    c2 = hibernate.checkpoint(store, ns)
    assert c2.bytes_written == 0
    ns["n"] = 2
    hibernate.checkpoint(store, ns)
    out: dict = {}
    assert hibernate.checkout(store, c1.id, out).ok and out["n"] == 1
    assert len(hibernate.log(store, all=True)) == 3


def test_s3_checkpoint_store_with_concurrent_writers(s3, tmp_path: Path) -> None:
    store = "s3://sessions/history"
    opts = s3["options"]
    ns = {"big": np.zeros(2_000_000), "step": 0}
    first = hibernate.checkpoint(store, ns, storage_options=opts)
    ns["big"][:10] = 1.0
    ns["step"] = 1
    second = hibernate.checkpoint(store, ns, storage_options=opts)
    assert 0 < second.bytes_written <= (4 << 20) + 4096
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": s3["endpoint"]}
    code = ("import sys, hibernate\n"
            "for i in range(3):\n"
            "    hibernate.checkpoint('s3://sessions/history', {'who': sys.argv[1], 'i': i})\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, who], env=env) for who in "ab"]
    assert all(p.wait(timeout=180) == 0 for p in procs)
    history = hibernate.log(store, all=True, storage_options=opts)
    assert len(history) == 8
    for c in history:
        assert hibernate.checkout(store, c.id, {}, storage_options=opts).ok
    out: dict = {}
    hibernate.checkout(store, first.id, out, storage_options=opts)
    assert out["step"] == 0 and not out["big"].any()


def test_s3_abort_uploads_stays_inside_its_prefix(s3) -> None:
    from hibernate.storage._remote import abort_uploads

    client = s3["client"]
    client.create_multipart_upload(Bucket="sessions", Key="team/old.hib")
    client.create_multipart_upload(Bucket="sessions", Key="team-other/live.hib")
    aborted = abort_uploads("s3://sessions/team", s3["options"])
    assert aborted == ["team/old.hib"]
    assert [u["Key"] for u in _uploads(client)] == ["team-other/live.hib"]
    abort_uploads("s3://sessions/team-other", s3["options"])
