"""Remote speed and pinning on a real S3 endpoint (moto's server on 127.0.0.1, the `s3`
fixture of conftest.py): uploads in parallel parts, parallel ranged reads, reads pinned to
the ETag (or VersionId) opened, and the local cache of fetched ranges.

The server is watched, never mocked: ``served`` records the GetObject and UploadPart
requests it answers (with their ranges and times), and can make each one take a little
longer, so that requests that overlap are seen to overlap."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import hibernate
from hibernate.errors import StorageError
from hibernate.storage import resolve

pytest.importorskip("s3fs")


class Served:
    """The requests the server answered: (operation, key, range header, start, end)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, float, float]] = []
        self.entered: list[tuple[str, str]] = []  # (operation, key) as each request arrives
        self.delay = 0.0
        self._lock = threading.Lock()

    def of(self, operation: str, key: str = "") -> list[tuple[str, str, str, float, float]]:
        return [c for c in self.calls if c[0] == operation and key in c[1]]

    def most_at_once(self, operation: str) -> int:
        spans = [(c[3], c[4]) for c in self.of(operation)]
        return max((sum(s <= t < e for s, e in spans) for t, _ in spans), default=0)


@pytest.fixture
def served(s3: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    from moto.s3.responses import S3Response

    record = Served()

    def watched(name: str) -> Any:
        original = getattr(S3Response, name)

        def handler(self: Any, *args: Any, **kw: Any) -> Any:
            start = time.monotonic()
            record.entered.append((name, self.path))
            time.sleep(record.delay)
            try:
                return original(self, *args, **kw)
            finally:
                with record._lock:
                    record.calls.append((name, self.path, self.headers.get("Range", ""),
                                         start, time.monotonic()))
        return handler

    for name in ("get_object", "upload_part"):
        monkeypatch.setattr(S3Response, name, watched(name))
    yield record


def _uploads(s3: dict[str, Any], prefix: str) -> list[Any]:
    got = s3["client"].list_multipart_uploads(Bucket="sessions", Prefix=prefix)
    return got.get("Uploads", [])  # type: ignore[no-any-return]


def _objects(s3: dict[str, Any], prefix: str) -> list[str]:
    got = s3["client"].list_objects_v2(Bucket="sessions", Prefix=prefix)
    return [o["Key"] for o in got.get("Contents", [])]


def _arrays(n: int, size: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {f"a{i}": rng.standard_normal(size) for i in range(n)}


# ---- uploads -----------------------------------------------------------------------------

def test_a_large_save_uploads_its_parts_concurrently(s3: dict[str, Any], served: Served,
                                                     fresh: Any) -> None:
    prefix = f"parts-{uuid.uuid4().hex[:8]}/"
    url = f"s3://sessions/{prefix}s.hib"
    served.delay = 0.05
    hibernate.save(url, _arrays(4, 1_000_000), storage_options=s3["options"])  # ~32 MB
    parts = served.of("upload_part", prefix)
    assert len(parts) >= 6                       # 5 MiB parts (the fixture's block size)
    assert served.most_at_once("upload_part") >= 3
    head = s3["client"].head_object(Bucket="sessions", Key=f"{prefix}s.hib")
    assert head["ETag"].endswith(f'-{len(parts)}"')  # one object made of all those parts
    assert _uploads(s3, prefix) == []
    got = fresh.json(f"""
        import hibernate, json
        import numpy as np
        ns = {{}}
        hibernate.load({url!r}, ns, storage_options=json.loads({json.dumps(s3["options"])!r}))
        rng = np.random.default_rng(0)
        print(json.dumps(all(np.array_equal(ns[f"a{{i}}"], rng.standard_normal(1_000_000))
                             for i in range(4))))
    """)
    assert got is True


def test_a_save_failing_with_parts_in_flight_leaves_nothing(s3: dict[str, Any],
                                                            served: Served,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    from hibernate.format import ChunkWriter

    prefix = f"failing-{uuid.uuid4().hex[:8]}/"
    original, calls = ChunkWriter.add_blob, {"n": 0}

    def failing(self: Any, data: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 4:  # 24 MB written: parts are up, others on their way
            raise RuntimeError("out of disk")
        return original(self, data)

    served.delay = 0.1
    monkeypatch.setattr(ChunkWriter, "add_blob", failing)
    with pytest.raises(RuntimeError, match="out of disk"):
        hibernate.save(f"s3://sessions/{prefix}s.hib", _arrays(6, 1_000_000),
                       storage_options=s3["options"])
    assert len(served.of("upload_part", prefix)) >= 3
    assert _objects(s3, prefix) == [] and _uploads(s3, prefix) == []


def test_a_killed_save_leaves_no_object_and_abort_uploads_cleans_up(
        s3: dict[str, Any], served: Served, tmp_path: Path) -> None:
    prefix = f"killed-{uuid.uuid4().hex[:8]}/"
    url = f"s3://sessions/{prefix}s.hib"
    served.delay = 1.0  # every part takes a second: the save is killed meanwhile
    script = tmp_path / "save.py"
    script.write_text(textwrap.dedent(f"""
        import hibernate, json, numpy as np
        hibernate.save({url!r}, {{"a": np.ones(8_000_000)}},
                       storage_options=json.loads({json.dumps(s3["options"])!r}))
    """))
    child = subprocess.Popen([sys.executable, str(script)], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(
                op == "upload_part" and prefix in key for op, key in served.entered):
            time.sleep(0.02)
        assert child.poll() is None, child.stderr.read() if child.stderr else ""
    finally:
        child.kill()
        child.wait()
    assert _objects(s3, prefix) == [] and len(_uploads(s3, prefix)) == 1
    from hibernate.storage._remote import abort_uploads

    aborted = abort_uploads(f"s3://sessions/{prefix}", s3["options"], older_than_seconds=0)
    assert aborted == [f"{prefix}s.hib"] and _uploads(s3, prefix) == []


# ---- reads -------------------------------------------------------------------------------

def test_ranged_reads_of_a_large_blob_run_in_parallel_and_are_exact(
        s3: dict[str, Any], served: Served) -> None:
    key = f"ranged-{uuid.uuid4().hex[:8]}/blob"
    data = random.Random(1).randbytes(40 << 20)
    s3["client"].put_object(Bucket="sessions", Key=key, Body=data)
    store, name = resolve(f"s3://sessions/{key}", s3["options"])
    served.delay = 0.05
    with store.open_read(name) as h:
        whole = h.read(0, len(data))
        assert whole == data and h.bytes_read == len(data)
    gets = served.of("get_object", key)
    assert len(gets) >= 4 and served.most_at_once("get_object") >= 3
    served.calls.clear()
    spans = [(i * (4 << 20) + 77, 4 << 20) for i in range(9)]  # as the loader's threads do
    with store.open_read(name) as h, ThreadPoolExecutor(8) as pool:
        def read(span: tuple[int, int]) -> bytes:
            buf = bytearray(span[1])
            h.readinto(span[0], memoryview(buf))
            return bytes(buf)

        assert list(pool.map(read, spans)) == [data[s:s + n] for s, n in spans]
        assert h.bytes_read < len(data)          # read ahead, not the whole object
    assert len(served.of("get_object", key)) < len(spans) + 2  # parts, not one GET a read


def test_a_small_read_fetches_only_its_bytes(s3: dict[str, Any], served: Served) -> None:
    key = f"small-{uuid.uuid4().hex[:8]}/blob"
    data = random.Random(2).randbytes(20 << 20)
    s3["client"].put_object(Bucket="sessions", Key=key, Body=data)
    store, name = resolve(f"s3://sessions/{key}", s3["options"])
    with store.open_read(name) as h:
        served.calls.clear()
        assert h.read(10 << 20, 5000) == data[10 << 20:(10 << 20) + 5000]
    assert [c[2] for c in served.of("get_object", key)] == [
        f"bytes={10 << 20}-{(10 << 20) + 4999}"]


# ---- pinning -----------------------------------------------------------------------------

def test_a_replaced_object_fails_the_next_read_of_an_open_snapshot(s3: dict[str, Any]
                                                                    ) -> None:
    url = f"s3://sessions/pinned-{uuid.uuid4().hex[:8]}/s.hib"
    opts = s3["options"]
    n = 100_000  # y's bytes are past the ends of the file fetched at open
    hibernate.save(url, {"x": np.arange(n * 1.0), "y": np.arange(n * 2.0)}, storage_options=opts)
    with hibernate.open(url, storage_options=opts) as snap:
        np.testing.assert_array_equal(snap["x"], np.arange(n * 1.0))
        hibernate.save(url, {"x": np.zeros(n), "y": np.zeros(2 * n)}, storage_options=opts)
        with pytest.raises(StorageError, match="was replaced while open"):
            snap["y"]
    with hibernate.open(url, storage_options=opts) as snap:  # opened again: the new one
        np.testing.assert_array_equal(snap["y"], np.zeros(2 * n))


def test_a_handle_on_a_replaced_or_deleted_object_says_so(s3: dict[str, Any]) -> None:
    key = f"pinned-{uuid.uuid4().hex[:8]}/blob"
    s3["client"].put_object(Bucket="sessions", Key=key, Body=b"a" * 300_000)
    store, name = resolve(f"s3://sessions/{key}", s3["options"])
    assert store.pinned_reads is False
    with store.open_read(name) as h:
        assert h.read(100_000, 10) == b"a" * 10
        s3["client"].put_object(Bucket="sessions", Key=key, Body=b"b" * 300_000)
        with pytest.raises(StorageError, match=f"{key} was replaced while open"):
            h.read(150_000, 10)
    with store.open_read(name) as h:
        s3["client"].delete_object(Bucket="sessions", Key=key)
        with pytest.raises(StorageError, match="was deleted while open"):
            h.read(150_000, 10)


def test_on_a_versioned_bucket_reads_keep_the_version_opened(s3: dict[str, Any]) -> None:
    client = s3["client"]
    bucket = f"versioned-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket)
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    client.put_object(Bucket=bucket, Key="k", Body=b"old" * 100_000)
    store, name = resolve(f"s3://{bucket}/k", s3["options"])
    assert store.pinned_reads is True
    with store.open_read(name) as h:
        client.put_object(Bucket=bucket, Key="k", Body=b"new" * 100_000)
        assert h.read(150_000, 9) == b"old" * 3


# ---- the local cache ---------------------------------------------------------------------

def test_a_cached_open_reads_nothing_remote_until_the_object_changes(
        s3: dict[str, Any], served: Served, fresh: Any, tmp_path: Path) -> None:
    prefix = f"cached-{uuid.uuid4().hex[:8]}/"
    url = f"s3://sessions/{prefix}s.hib"
    cached = {**s3["options"], "cache": str(tmp_path / "cache")}
    hibernate.save(url, {"x": np.arange(100_000.0), "big": np.ones(1_000_000)},
                   storage_options=s3["options"])
    read_x = f"""
        import hibernate, json
        with hibernate.open({url!r}, storage_options=json.loads({json.dumps(cached)!r})) as s:
            x = s["x"]
            print(json.dumps([float(x.sum()), s.bytes_read]))
    """
    total, fetched = fresh.json(read_x)
    assert total == sum(range(100_000)) and 800_000 < fetched < 900_000
    served.calls.clear()
    assert fresh.json(read_x) == [total, 0]
    assert served.of("get_object", prefix) == []  # nothing fetched: the ETag was checked
    hibernate.save(url, {"x": np.arange(100_000.0) * 2}, storage_options=s3["options"])
    total, fetched = fresh.json(read_x)
    assert total == 2 * sum(range(100_000)) and fetched > 800_000
    assert len(list((tmp_path / "cache").glob("*.data"))) == 1  # the old version's went
