"""The read side of the fsspec store: ranged reads pinned to the version opened, read-ahead in
parallel parts, and the optional local cache.

Reads. Opening an S3 object fetches its first and last ``ENDS`` bytes (64 KiB) in one round
trip: a file's header, trailer and, mostly, its manifest are read from them (``bytes_read``
counts them as they are read). Any other small read is one exact ranged GET. A large one (a
chunk of a big value) starts a read-ahead stream: the bytes from there on are fetched in
parts, several at once, whose size doubles from 8 MiB up to the filesystem's block size
(s3fs: ``default_block_size``, 50 MiB unless set) while the reads go on in order, at most
``AHEAD`` bytes (128 MiB) ahead of them and twice what the stream has served; the reads that
follow are served from those parts, whose memory goes once every byte was handed out. The
parts are fetched in a small remote-I/O thread pool (forgotten in a forked child).

Pinning. On S3 every GET names the VersionId opened (a versioned bucket: that version stays
readable) or carries ``If-Match`` with the ETag opened, so that a replaced object raises
``StorageError`` ("... was replaced while open ...") on the next read. Elsewhere reads are
not pinned: a replaced object fails its chunk digests, it never mixes versions silently.

Cache. The storage option ``cache`` (a directory, or True for the user's cache directory;
hibernate's own, never passed to fsspec) keeps every fetched range of an object on local
disk, keyed by URL and ETag (and VersionId): a second ``open()`` of the unchanged object
reads no bytes remotely (one HEAD checks the ETag), and a changed object never serves the
old bytes (its ETag names other cache files; the old ones are removed). What comes from the
cache is checked by the chunk digests and the signature like anything read.

Also here: the few fsspec and S3 call helpers that the write side (``_remote.py``) shares.

Non-goals: evicting a cache by size, pinning off S3.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import threading
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from .._threads import submit
from ..errors import StorageError
from ._base import ReadHandle

__all__ = ["FsspecReadHandle"]

STREAM_MIN = 1 << 20  # a read this large starts (or continues) a read-ahead stream
FIRST_PART = 8 << 20  # the first parts of a stream; they double up to the block size
AHEAD = 128 << 20     # how far a stream fetches ahead of the reads it serves
ENDS = 64 << 10       # the first and last bytes of an S3 object, fetched at open


def _wrap(what: str, e: Exception) -> StorageError:
    return StorageError(f"{what}: {type(e).__name__}: {e}")


def _protocols(fs: Any) -> set[str]:
    p = fs.protocol
    return {p} if isinstance(p, str) else set(p)


def _is_s3(fs: Any) -> bool:
    return bool(_protocols(fs) & {"s3", "s3a"}) and hasattr(fs, "_call_s3")


def _sync(fs: Any, coroutine_function: Any, *args: Any, **kw: Any) -> Any:
    """Run a coroutine on the filesystem's event loop and wait for it."""
    from fsspec.asyn import sync  # type: ignore[import-untyped]

    return sync(fs.loop, coroutine_function, *args, **kw)


def _s3(fs: Any, method: str, **kw: Any) -> Any:
    """One S3 call through s3fs's client (its credentials, retries and error mapping)."""
    return _sync(fs, fs._call_s3, method, **kw)


async def _s3_get(fs: Any, bucket: str, key: str, span: str,
                  pin: dict[str, str]) -> tuple[dict[str, Any], bytes]:
    """A ranged GET (``span``: "START-END", or "-N" for the last N bytes): the response's
    metadata and the bytes."""
    resp = await fs._call_s3("get_object", Bucket=bucket, Key=key, Range=f"bytes={span}",
                             **pin)
    try:
        return resp, await resp["Body"].read()
    finally:
        resp["Body"].close()


async def _s3_ends(fs: Any, bucket: str, key: str, n: int, pin: dict[str, str]
                   ) -> list[tuple[dict[str, Any], bytes]]:
    """The first and the last ``n`` bytes, fetched at once."""
    return list(await asyncio.gather(_s3_get(fs, bucket, key, f"0-{n - 1}", pin),
                                     _s3_get(fs, bucket, key, f"-{n}", pin)))


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _forget_pool() -> None:  # a forked child has none of its parent's threads
    global _POOL, _POOL_LOCK
    _POOL, _POOL_LOCK = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool)


def _submit(fn: Any, *args: Any) -> Future[Any]:
    """Run ``fn(*args)`` in a remote-I/O thread; inline when threads can no longer start."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(8, thread_name_prefix="hibernate-remote")
        pool = _POOL
    return submit(pool, fn, *args)


# ---- reading -----------------------------------------------------------------------------

class _DiskCache:
    """Fetched ranges of one version of one object: ``NAME.data`` holds them at their own
    offsets (a sparse file); ``NAME.ranges`` lists them with the data file's inode (an index
    never describes another file), written when the handle closes, after the data is
    flushed. Files of the same URL with another tag are removed when it is opened."""

    def __init__(self, directory: str, url: str, tag: str, size: int) -> None:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        name = hashlib.sha256(url.encode()).hexdigest()[:32]
        base = f"{name}-{hashlib.sha256(tag.encode()).hexdigest()[:16]}"
        for old in os.listdir(directory):
            if old.startswith(name) and not old.startswith(base):
                with suppress(OSError):
                    os.unlink(os.path.join(directory, old))
        self._index = os.path.join(directory, base + ".ranges")
        self._fd = os.open(os.path.join(directory, base + ".data"), os.O_RDWR | os.O_CREAT,
                           0o600)
        self._ino, self._size = os.fstat(self._fd).st_ino, size
        self._lock = threading.Lock()
        self._ranges = self._saved()
        self._dirty = False

    def _saved(self) -> list[tuple[int, int]]:
        with suppress(OSError, KeyError, ValueError, TypeError):  # no index, or a bad one
            with open(self._index) as f:
                saved = json.load(f)
            if saved["ino"] == self._ino:
                return [(int(s), int(e)) for s, e in saved["ranges"] if 0 <= s < e <= self._size]
        return []

    def get(self, start: int, end: int) -> bytes | None:
        with self._lock:
            if self._fd < 0 or not any(s <= start and end <= e for s, e in self._ranges):
                return None
            data = os.pread(self._fd, end - start, start)
        return data if len(data) == end - start else None

    def put(self, start: int, data: bytes) -> None:
        with self._lock:
            try:
                if self._fd < 0:
                    return
                if os.pwrite(self._fd, data, start) != len(data):
                    raise OSError("a short write (is the disk full?)")
            except OSError as e:  # a cache that cannot be written is no cache, not a failure
                warnings.warn(f"hibernate's remote cache: {e}", RuntimeWarning, stacklevel=2)
                return
            self._ranges = _merged([*self._ranges, (start, start + len(data))])
            self._dirty = True

    def close(self) -> None:
        with self._lock:
            fd, self._fd = self._fd, -1
            if fd < 0:
                return
            try:
                if self._dirty and os.fstat(fd).st_nlink:  # not removed for a newer version
                    os.fdatasync(fd)
                    tmp = f"{self._index}.{os.getpid()}.{secrets.token_hex(4)}"
                    with open(tmp, "w") as f:
                        json.dump({"ino": self._ino,
                                   "ranges": _merged(self._ranges + self._saved())}, f)
                    os.replace(tmp, self._index)
            except OSError as e:
                warnings.warn(f"hibernate's remote cache: {e}", RuntimeWarning, stacklevel=2)
            finally:
                os.close(fd)


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(e, out[-1][1]))
        else:
            out.append((s, e))
    return out


@dataclass
class _Part:
    start: int
    end: int
    data: Future[bytes]
    served: int = 0


class FsspecReadHandle(ReadHandle):
    concurrent = True  # ranged reads may run in parallel threads

    def __init__(self, fs: Any, path: str, cache: str | None = None) -> None:
        self.fs, self.path = fs, path
        self._pin: dict[str, str] = {}
        self._prefix = self._suffix = b""  # the object's first and last bytes, from open
        tag = self._open(cache is not None)
        self._cache = None
        if cache is not None and tag:
            opts = getattr(fs, "storage_options", {}) or {}
            endpoint = opts.get("endpoint_url") or (opts.get("client_kwargs") or {}).get(
                "endpoint_url", "")
            try:
                self._cache = _DiskCache(cache, f"{endpoint}\n{fs.unstrip_protocol(path)}",
                                         tag, self.size)
            except OSError as e:
                warnings.warn(f"hibernate's remote cache {cache} is not usable: {e}",
                              RuntimeWarning, stacklevel=3)
        self._lock = threading.RLock()  # (a part fetched inline, at exit, takes it again)
        self._parts: dict[int, _Part] = {}  # the stream: contiguous parts from _lo to _hi
        self._lo = self._hi = -1
        self._block = max(int(getattr(fs, "default_block_size", 0) or 32 << 20), 1 << 20)

    def _open(self, cached: bool) -> str:
        """Size the object; on S3 pin it, and (uncached) fetch its first bytes with the same
        request. Returns its version tag ("" if it has none)."""
        try:
            if _is_s3(self.fs):
                return self._open_s3(cached)
            info = self.fs.info(self.path)
        except FileNotFoundError as e:
            raise StorageError(f"cannot open {self.path}: no such object") from e
        except Exception as e:
            raise _wrap(f"cannot open {self.path}", e) from e
        if info.get("type") == "directory":
            raise StorageError(f"cannot open {self.path}: it is a directory")
        self.size = int(info["size"])
        return str(info.get("ETag") or info.get("etag") or "")

    def _open_s3(self, cached: bool) -> str:
        self._bucket, self._key, version = self.fs.split_path(self.path)
        which = {"VersionId": version} if version else {}
        meta = None
        if not cached:  # header and trailer are read first: one round trip, not three
            try:
                (meta, head), (tail, foot) = _sync(self.fs, _s3_ends, self.fs, self._bucket,
                                                   self._key, ENDS, which)
                if tail.get("ETag") != meta.get("ETag"):
                    raise ValueError("replaced between the two reads")
                self.size = int(meta["ContentRange"].rpartition("/")[2])
                self._prefix, self._suffix = head, foot  # counted in bytes_read when read
            except FileNotFoundError:
                raise
            except Exception:  # an empty object has no range to get: a HEAD says why
                meta = None
        if meta is None:
            meta = _s3(self.fs, "head_object", Bucket=self._bucket, Key=self._key, **which)
            self.size = int(meta["ContentLength"])
        etag = str(meta.get("ETag", ""))
        version = version or meta.get("VersionId")
        if version and version != "null":
            self._pin = {"VersionId": version}
        elif etag:
            self._pin = {"IfMatch": etag}
        return f"{etag} {version or ''}" if etag else ""

    def _fetch(self, start: int, end: int) -> bytes:
        """Bytes ``start:end`` from the cache, else from the store (then kept in the cache)."""
        if self._cache is not None:
            cached = self._cache.get(start, end)
            if cached is not None:
                return cached
        try:
            if _is_s3(self.fs):
                data: bytes = _sync(self.fs, _s3_get, self.fs, self._bucket, self._key,
                                    f"{start}-{end - 1}", self._pin)[1]
            else:
                data = bytes(self.fs.cat_file(self.path, start=start, end=end))
        except Exception as e:
            raise self._read_error(e) from e
        if len(data) != end - start:
            raise StorageError(f"{self.path}: the object changed or shrank while reading")
        with self._lock:
            self.bytes_read += len(data)
        if self._cache is not None:
            self._cache.put(start, data)
        return data

    def _read_error(self, e: Exception) -> StorageError:
        code = getattr(e.__cause__, "response", {}).get("Error", {}).get("Code")
        if code == "PreconditionFailed":
            return StorageError(f"{self.path} was replaced while open (its ETag is no longer "
                                f"{self._pin.get('IfMatch')}): open it again to read the "
                                "new version")
        if isinstance(e, FileNotFoundError) or code in ("NoSuchKey", "NoSuchVersion"):
            return StorageError(f"{self.path} was deleted while open")
        return _wrap(f"cannot read {self.path}", e)

    def _stream(self, start: int, end: int) -> list[_Part] | None:
        """The parts serving ``start:end``, extending the stream (called under the lock);
        None for a read done on its own (small, or just behind the stream)."""
        if not self._lo <= start <= self._hi:
            if end - start < STREAM_MIN or self._lo - 2 * self._block <= start < self._lo:
                return None
            self._parts, self._lo, self._hi = {}, start, start  # a new stream
        ahead = min(AHEAD, max(FIRST_PART, 2 * (end - self._lo)))  # twice what was read
        target = min(self.size, end + ahead)
        while self._hi < target:
            n = min(self._block, max(min(FIRST_PART, self._block), self._hi - self._lo),
                    self.size - self._hi)
            part = _Part(self._hi, self._hi + n, _submit(self._fetch, self._hi, self._hi + n))
            self._parts[part.start] = part
            self._hi += n
        for p in [p for p in self._parts.values() if p.end < start - 2 * self._block]:
            del self._parts[p.start]  # behind the reads: skipped, never to be served
        return [p for p in self._parts.values() if p.start < end and start < p.end]

    def _pieces(self, start: int, length: int) -> list[memoryview]:
        if start < 0 or length < 0 or start + length > self.size:
            raise StorageError(f"{self.path}: read of {length} bytes at {start} is past the end")
        if length == 0:
            return []
        end = start + length
        at = self.size - len(self._suffix)
        if end <= len(self._prefix) or start >= at:
            with self._lock:
                self.bytes_read += length
            if end <= len(self._prefix):
                return [memoryview(self._prefix)[start:end]]
            return [memoryview(self._suffix)[start - at:end - at]]
        with self._lock:
            parts = self._stream(start, end)
        if parts is None:
            return [memoryview(self._fetch(start, end))]
        pieces = []
        for p in parts:
            try:
                data = p.data.result()
            except BaseException:
                with self._lock:
                    self._parts.pop(p.start, None)
                raise
            lo, hi = max(start, p.start), min(end, p.end)
            pieces.append(memoryview(data)[lo - p.start:hi - p.start])
            with self._lock:
                p.served += hi - lo
                if p.served >= p.end - p.start and self._parts.get(p.start) is p:
                    del self._parts[p.start]  # every byte handed out: its memory goes
        return pieces

    def read(self, start: int, length: int) -> bytes:
        pieces = self._pieces(start, length)
        if len(pieces) == 1 and len(pieces[0].obj) == length:  # type: ignore[arg-type]
            return pieces[0].obj  # type: ignore[return-value]
        return b"".join(pieces)

    def readinto(self, start: int, buf: memoryview) -> None:
        pos = 0
        for piece in self._pieces(start, len(buf)):
            buf[pos:pos + len(piece)] = piece
            pos += len(piece)

    def close(self) -> None:
        with self._lock:
            parts, self._parts, self._lo, self._hi = self._parts, {}, -1, -1
        for p in parts.values():
            if not p.data.cancel() and self._cache is not None:
                with suppress(Exception):
                    p.data.exception()  # a fetch still running writes to the cache
        if self._cache is not None:
            self._cache.close()
