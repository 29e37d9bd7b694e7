"""Every store runs the StoreTests contract (tests/conformance.py): the local store, the
in-memory store, and the fsspec store against a real S3 endpoint (moto's server)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest

pytest.register_assert_rewrite("conformance")  # readable failures from the shared bases

from conformance import StoreTests, blob  # noqa: E402
from hibernate.storage import LocalStore, MemoryStore, Store, resolve  # noqa: E402


class TestLocalStore(StoreTests):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Store:
        return LocalStore(str(tmp_path / "root"))  # made by the first write

    @pytest.fixture
    def broken_store(self, tmp_path: Path) -> Store:
        (tmp_path / "file").write_bytes(b"a file where the store's directory should be")
        return LocalStore(str(tmp_path / "file" / "root"))

    def test_no_temp_file_is_left_on_disk(self, store: Store, tmp_path: Path) -> None:
        store.put("a/k", b"old")
        for finish in ("discard", "commit"):
            w = store.open_write("a/k")
            w.write(blob(10_000))
            getattr(w, finish)()
        assert sorted(os.listdir(tmp_path / "root" / "a")) == ["k"]


class TestMemoryStore(StoreTests):
    @pytest.fixture
    def store(self) -> Store:
        return MemoryStore()


@pytest.fixture(scope="module")
def options(s3: dict[str, Any]) -> dict[str, Any]:
    """s3fs options for the conformance bucket (test_remote.py keeps to "sessions")."""
    s3["client"].create_bucket(Bucket="conformance")
    return s3["options"]  # type: ignore[no-any-return]


class TestS3Store(StoreTests):
    # an unversioned bucket: a replaced object raises StorageError on the next read (If-Match)
    pinned_reads = False
    large = 6 << 20  # past s3fs's 5 MiB block size: a multipart upload

    @pytest.fixture
    def store(self, options: dict[str, Any]) -> Store:
        return resolve(f"s3://conformance/{uuid.uuid4().hex}/x", options)[0]

    @pytest.fixture
    def broken_store(self, options: dict[str, Any]) -> Store:
        return resolve("s3://no-such-bucket/prefix/x", options)[0]

    def test_a_discarded_upload_leaves_no_multipart_upload(self, store: Store,
                                                           s3: dict[str, Any]) -> None:
        w = store.open_write("big")
        w.write(blob(self.large, 1))  # parts are uploaded before the discard
        w.discard()
        prefix = store.root.partition("/")[2]  # type: ignore[attr-defined]
        uploads = s3["client"].list_multipart_uploads(Bucket="conformance", Prefix=prefix)
        assert uploads.get("Uploads", []) == [] and not store.exists("big")
