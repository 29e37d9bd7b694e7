"""fsspec store: any fsspec URL (s3://, gs://, az://, memory://, ...) as a hibernate store.

A thin adapter over ``fsspec.url_to_fs``: URL resolution, the store and the write side.
Reads (the ends fetched at open, the read-ahead stream, pinning to the ETag or VersionId,
the local ``cache``) are in ``_remote_read.py``.

Writes on S3: a multipart upload whose parts (the block size each) go up several at once
while the save goes on, at most ``UPLOAD_AHEAD`` bytes held; the object appears only on
``commit()`` (a single PUT when it is smaller than one part), and ``discard()`` waits for
the parts in flight and aborts the upload, so a failed save leaves no object and no pending
upload (a killed one leaves an upload that ``abort_uploads`` removes). Other object stores
(GCS, Azure): a file opened with ``autocommit=False``, published by ``commit()``. Other
filesystems: a temp object and a move.

Non-goals: caching what is written.
"""

from __future__ import annotations

import asyncio
import os
import posixpath
import secrets
import warnings
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import suppress
from typing import Any

from ..errors import StorageError
from ._base import ReadHandle, Store, WriteHandle
from ._remote_read import FsspecReadHandle, _is_s3, _protocols, _s3, _wrap

__all__ = ["FsspecStore", "abort_uploads", "url_to_store"]

INSTALL_HINT = "remote URLs need fsspec (and s3fs for s3://): pip install 'hibernate[remote]'"

UPLOAD_AHEAD = 256 << 20  # parts of an upload held in memory (in flight or being filled)
MIN_PART = 5 << 20        # S3's smallest part (but the last)


def url_to_store(url: str, storage_options: dict[str, Any] | None) -> tuple[FsspecStore, str]:
    try:
        import fsspec  # type: ignore[import-untyped]
    except ImportError:
        raise StorageError(INSTALL_HINT) from None
    options = dict(storage_options or {})
    cache = _cache_dir(options.pop("cache", None))
    try:
        fs, path = fsspec.core.url_to_fs(url, **options)
    except ImportError as e:
        raise StorageError(f"{e}; {INSTALL_HINT}") from None
    except (ValueError, TypeError) as e:
        raise StorageError(f"cannot use {url}: {e}") from e
    parent, name = posixpath.split(path.rstrip("/"))
    return FsspecStore(fs, parent, cache), name


def _cache_dir(option: object) -> str | None:
    if option is None or option is False or option in ("", "false", "False", "0"):
        return None
    if option is True or option in ("true", "True", "1"):
        import platformdirs

        return os.path.join(platformdirs.user_cache_dir("hibernate", appauthor=False),
                            "remote")
    if not isinstance(option, (str, os.PathLike)):
        raise ValueError(f"storage option cache={option!r}: a directory or True")
    return os.path.abspath(os.path.expanduser(os.fspath(option)))

# ---- writing -----------------------------------------------------------------------------

class _S3Upload(WriteHandle):
    """A multipart upload, parts sent in parallel; nothing is published before commit()."""

    def __init__(self, fs: Any, path: str) -> None:
        self.fs, self.path = fs, path
        self._bucket, self._key, _ = fs.split_path(path)
        self._size = max(MIN_PART, int(getattr(fs, "default_block_size", 0) or 0))
        concurrency = int(getattr(fs, "max_concurrency", 4) or 4)
        self._most = max(1, min(concurrency, UPLOAD_AHEAD // self._size - 1))
        self._buf = bytearray()  # the part being filled (grown as written: a small file
        self._upload: str | None = None  # costs no part-sized buffer)
        self._sent: list[Future[Any]] = []
        self._finished = False

    def write(self, data: bytes | memoryview) -> None:
        if self._finished:
            raise StorageError(f"{self.path}: this upload is finished")
        try:
            view = memoryview(data).cast("B")
            while view:
                n = min(len(view), self._size - len(self._buf))
                self._buf += view[:n]
                view = view[n:]
                if len(self._buf) == self._size:
                    self._send(self._buf)
                    self._buf = bytearray()
        except Exception as e:
            raise _wrap(f"cannot write {self.path}", e) from e

    def _send(self, body: bytes | bytearray) -> None:
        if self._upload is None:
            self._upload = _s3(self.fs, "create_multipart_upload", Bucket=self._bucket,
                               Key=self._key)["UploadId"]
        while sum(not f.done() for f in self._sent) >= self._most:
            next(f for f in self._sent if not f.done()).result()  # memory stays bounded
        for f in self._sent:
            if f.done() and f.exception() is not None:
                f.result()
        call = self.fs._call_s3("upload_part", Bucket=self._bucket, Key=self._key,
                                UploadId=self._upload, PartNumber=len(self._sent) + 1, Body=body)
        self._sent.append(asyncio.run_coroutine_threadsafe(call, self.fs.loop))

    def commit(self) -> None:
        if self._finished:
            raise StorageError(f"{self.path}: this upload is finished")
        try:
            last = self._buf
            if self._upload is None:  # smaller than a part: one PUT
                _s3(self.fs, "put_object", Bucket=self._bucket, Key=self._key, Body=last)
            else:
                if last:
                    self._send(last)
                parts = [{"PartNumber": i + 1, **{k: v for k, v in f.result().items()
                                                  if k in ("ETag", "ChecksumSHA256")}}
                         for i, f in enumerate(self._sent)]  # as s3fs completes its own
                _s3(self.fs, "complete_multipart_upload", Bucket=self._bucket, Key=self._key,
                    UploadId=self._upload, MultipartUpload={"Parts": parts})
        except BaseException as e:
            self.discard()
            if isinstance(e, Exception):
                raise _wrap(f"cannot save {self.path}", e) from e
            raise
        self._finished = True
        self.fs.invalidate_cache(self.path)

    def discard(self) -> None:
        if self._finished:
            return
        self._finished = True
        self._buf = bytearray()
        for f in self._sent:  # wait: a part still sending could outlive the abort
            with suppress(Exception):
                f.exception()
        if self._upload is None:
            return
        try:
            _s3(self.fs, "abort_multipart_upload", Bucket=self._bucket, Key=self._key,
                UploadId=self._upload)
        except Exception as e:  # cleanup after another failure: said, never raised over it
            warnings.warn(f"hibernate could not abort the upload of {self.path} "
                          f"({type(e).__name__}: {e}); `hibernate abort-uploads` removes "
                          "unfinished uploads", RuntimeWarning, stacklevel=2)


# Object stores whose files defer publishing to commit() (and can discard): others (memory,
# sftp, ...) publish at open or close, so they get a temp object and a move instead.
_DEFERRED = frozenset({"s3", "s3a", "gs", "gcs", "abfs", "abfss", "az"})


class FsspecWriteHandle(WriteHandle):
    def __init__(self, fs: Any, path: str) -> None:
        self.fs, self.path = fs, path
        self._tmp: str | None = None
        self._finished = False  # committed or discarded: later calls change nothing
        try:
            if _protocols(fs) & _DEFERRED:
                self._f = fs.open(path, "wb", autocommit=False)
            else:
                self._tmp = f"{path}.{secrets.token_hex(6)}.hib-tmp"
                self._f = fs.open(self._tmp, "wb")
        except Exception as e:
            raise _wrap(f"cannot create {path}", e) from e

    def write(self, data: bytes | memoryview) -> None:
        try:
            self._f.write(data)
        except Exception as e:
            raise _wrap(f"cannot write {self.path}", e) from e

    def commit(self) -> None:
        try:
            self._f.close()
            if self._tmp is None:
                self._f.commit()
            else:
                self.fs.mv(self._tmp, self.path)
        except Exception as e:
            self.discard()
            raise _wrap(f"cannot save {self.path}", e) from e
        self._finished = True

    def discard(self) -> None:
        if self._finished:
            return
        self._finished = True
        try:
            if self._tmp is None:
                self._f.discard()  # aborts a multipart upload
                self._f.closed = True  # its buffer is gone: closing would try to flush
            else:
                self._f.close()
                self.fs.rm(self._tmp)
        except Exception as e:  # cleanup after another failure: said, never raised over it
            warnings.warn(f"hibernate could not discard the unfinished {self.path} "
                          f"({type(e).__name__}: {e}); `hibernate abort-uploads` removes "
                          "unfinished uploads", RuntimeWarning, stacklevel=2)


# ---- the store ---------------------------------------------------------------------------

class FsspecStore(Store):
    """Objects below ``root`` on an fsspec filesystem; ``cache``: a local directory that
    keeps fetched ranges (see ``_remote_read``)."""

    def __init__(self, fs: Any, root: str, cache: str | None = None) -> None:
        self.fs, self.root, self.cache = fs, root, cache
        self._versioned: bool | None = None

    def _path(self, key: str) -> str:
        return posixpath.join(self.root, key) if self.root else key

    @property
    def pinned_reads(self) -> bool:  # type: ignore[override]
        """True on a versioned S3 bucket (reads name the version opened). Elsewhere on S3 a
        replaced object raises StorageError on the next read; off S3 it fails its digests."""
        if self._versioned is None:
            self._versioned = False
            if _is_s3(self.fs):
                with suppress(Exception):
                    bucket = self.fs.split_path(self._path("x"))[0]
                    status = _s3(self.fs, "get_bucket_versioning", Bucket=bucket)
                    self._versioned = status.get("Status") == "Enabled"
        return self._versioned

    def open_read(self, key: str) -> ReadHandle:
        return FsspecReadHandle(self.fs, self._path(key), self.cache)

    def open_write(self, key: str) -> WriteHandle:
        if _is_s3(self.fs):
            return _S3Upload(self.fs, self._path(key))
        return FsspecWriteHandle(self.fs, self._path(key))

    def exists(self, key: str) -> bool:
        try:
            return bool(self.fs.exists(self._path(key)))
        except Exception as e:
            raise _wrap(f"cannot look up {key}", e) from e

    @property
    def atomic_create(self) -> bool:  # type: ignore[override]
        """Object stores with a conditional put (``If-None-Match``) through fsspec's "xb"."""
        return bool(_protocols(self.fs) & {"s3", "s3a", "gs", "gcs"})

    def create(self, key: str, data: bytes | memoryview, durable: bool = True) -> bool:
        path = self._path(key)
        try:
            with self.fs.open(path, "xb") as f:  # a conditional put where the store has one
                f.write(data)
            return True
        except FileExistsError:
            return False
        except (ValueError, NotImplementedError, TypeError):
            pass  # no exclusive mode here: check, then put
        except Exception as e:
            raise _wrap(f"cannot create {key}", e) from e
        return super().create(key, data)

    def delete(self, key: str) -> None:
        try:
            self.fs.rm(self._path(key))
        except FileNotFoundError:
            pass
        except Exception as e:
            raise _wrap(f"cannot delete {key}", e) from e

    def list(self, prefix: str = "") -> Iterator[str]:
        base = self._path("")
        try:
            found = self.fs.find(posixpath.join(base, posixpath.dirname(prefix)))
        except FileNotFoundError:
            return
        except Exception as e:
            raise _wrap(f"cannot list {prefix or 'the store'}", e) from e
        for p in found:
            key = posixpath.relpath(p, base.rstrip("/") or "/")
            if key.startswith(prefix) and not key.endswith(".hib-tmp"):
                yield key


def abort_uploads(url: str, storage_options: dict[str, Any] | None = None,
                  older_than_seconds: float = 3600.0) -> list[str]:
    """Abort unfinished S3 multipart uploads below ``url`` (left by a killed save) that were
    started more than ``older_than_seconds`` ago, so that a running save is spared.
    Returns the keys whose uploads were aborted."""
    import datetime

    store, name = url_to_store(url.rstrip("/") + "/", storage_options)
    fs = store.fs
    if not hasattr(fs, "list_multipart_uploads"):
        raise StorageError(f"{url}: this filesystem has no multipart uploads to clean")
    prefix = store._path(name).lstrip("/")
    bucket, _, key_prefix = prefix.partition("/")
    key_prefix = key_prefix.rstrip("/") + "/" if key_prefix else ""
    now = datetime.datetime.now(datetime.timezone.utc)
    aborted = []
    for upload in fs.list_multipart_uploads(bucket):
        key, started = upload.get("Key", ""), upload.get("Initiated")
        if not key.startswith(key_prefix):
            continue
        if started is not None and (now - started).total_seconds() < older_than_seconds:
            continue
        fs.abort_mpu(bucket, key, upload["UploadId"])
        aborted.append(key)
    return aborted
