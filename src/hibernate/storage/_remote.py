"""fsspec store: any fsspec URL (s3://, gs://, az://, memory://, ...) as a hibernate store.

A thin adapter over ``fsspec.url_to_fs``. Reads: ranged ``cat_file`` (several at once for a
large blob). Writes on object stores (S3, GCS, Azure): a file opened with
``autocommit=False``, published by ``commit()`` only when the save completed and
``discard()``-ed otherwise, which aborts an S3 multipart upload (a plain
``with fs.open(...)`` would publish a partial object on an exception). Other filesystems:
a temp object and a move.

Reads are not pinned to a version: a file replaced while it is open fails its chunk digests
(an IntegrityError per entry), it never mixes versions silently.
"""

from __future__ import annotations

import posixpath
import secrets
import warnings
from collections.abc import Iterator
from typing import Any

from ..errors import StorageError
from ._base import ReadHandle, Store, WriteHandle

__all__ = ["FsspecStore", "abort_uploads", "url_to_store"]

INSTALL_HINT = "remote URLs need fsspec (and s3fs for s3://): pip install 'hibernate[remote]'"


def url_to_store(url: str, storage_options: dict[str, Any] | None) -> tuple[FsspecStore, str]:
    try:
        import fsspec  # type: ignore[import-untyped]
    except ImportError:
        raise StorageError(INSTALL_HINT) from None
    try:
        fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    except ImportError as e:
        raise StorageError(f"{e}; {INSTALL_HINT}") from None
    except (ValueError, TypeError) as e:
        raise StorageError(f"cannot use {url}: {e}") from e
    parent, name = posixpath.split(path.rstrip("/"))
    return FsspecStore(fs, parent), name


def _wrap(what: str, e: Exception) -> StorageError:
    return StorageError(f"{what}: {type(e).__name__}: {e}")


class FsspecReadHandle(ReadHandle):
    concurrent = True  # ranged reads may run in parallel threads

    def __init__(self, fs: Any, path: str) -> None:
        self.fs, self.path = fs, path
        try:
            info = fs.info(path)
        except FileNotFoundError as e:
            raise StorageError(f"cannot open {path}: no such object") from e
        except Exception as e:
            raise _wrap(f"cannot open {path}", e) from e
        if info.get("type") == "directory":
            raise StorageError(f"cannot open {path}: it is a directory")
        self.size = int(info["size"])

    def read(self, start: int, length: int) -> bytes:
        if start < 0 or start + length > self.size:
            raise StorageError(f"{self.path}: read of {length} bytes at {start} is past the end")
        if length == 0:
            return b""
        try:
            data = bytes(self.fs.cat_file(self.path, start=start, end=start + length))
        except Exception as e:
            raise _wrap(f"cannot read {self.path}", e) from e
        if len(data) != length:
            raise StorageError(f"{self.path}: the object changed or shrank while reading")
        self.bytes_read += length
        return data

    def readinto(self, start: int, buf: memoryview) -> None:
        buf[:] = self.read(start, len(buf))

    def close(self) -> None:
        pass


# Object stores whose files defer publishing to commit() (and can discard): others (memory,
# sftp, ...) publish at open or close, so they get a temp object and a move instead.
_DEFERRED = frozenset({"s3", "s3a", "gs", "gcs", "abfs", "abfss", "az"})


def _protocols(fs: Any) -> set[str]:
    p = fs.protocol
    return {p} if isinstance(p, str) else set(p)


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


class FsspecStore(Store):
    """Objects below ``root`` on an fsspec filesystem."""

    pinned_reads = False  # ranged reads fetch the current object (see README, limits)

    def __init__(self, fs: Any, root: str) -> None:
        self.fs, self.root = fs, root

    def _path(self, key: str) -> str:
        return posixpath.join(self.root, key) if self.root else key

    def open_read(self, key: str) -> ReadHandle:
        return FsspecReadHandle(self.fs, self._path(key))

    def open_write(self, key: str) -> WriteHandle:
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
