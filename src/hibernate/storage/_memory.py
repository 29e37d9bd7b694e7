"""An in-process store: a dict of immutable byte strings (for tests and scratch sessions).

Reads pin the bytes they opened (a later write to the key is not seen by an open handle);
writes appear only on ``commit``; ``create`` is atomic (one lock per store).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from ..errors import StorageError
from ._base import ReadHandle, Store, WriteHandle

__all__ = ["MemoryStore"]


class _Read(ReadHandle):
    concurrent = True

    def __init__(self, key: str, data: bytes) -> None:
        self._key, self._data = key, data
        self.size = len(data)

    def read(self, start: int, length: int) -> bytes:
        if start < 0 or start + length > self.size:
            raise StorageError(f"{self._key}: read of {length} bytes at {start} is past the end")
        self.bytes_read += length
        return self._data[start:start + length]

    def readinto(self, start: int, buf: memoryview) -> None:
        buf[:] = self.read(start, len(buf))

    def close(self) -> None:
        pass


class _Write(WriteHandle):
    can_truncate = True

    def __init__(self, store: MemoryStore, key: str) -> None:
        self._store, self._key = store, key
        self._buf: bytearray | None = bytearray()

    def write(self, data: bytes | memoryview) -> None:
        if self._buf is None:
            raise StorageError(f"{self._key}: write after commit or discard")
        self._buf += data

    def truncate(self, size: int) -> None:
        if self._buf is not None:
            del self._buf[size:]

    def commit(self) -> None:
        if self._buf is None:
            raise StorageError(f"{self._key}: commit after commit or discard")
        with self._store._lock:
            self._store._objects[self._key] = bytes(self._buf)
        self._buf = None

    def discard(self) -> None:
        self._buf = None


class MemoryStore(Store):
    atomic_create = True

    def __init__(self) -> None:
        self._objects: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def open_read(self, key: str) -> ReadHandle:
        try:
            return _Read(key, self._objects[key])
        except KeyError:
            raise StorageError(f"no object {key!r}") from None

    def open_write(self, key: str) -> WriteHandle:
        return _Write(self, key)

    def exists(self, key: str) -> bool:
        return key in self._objects

    def delete(self, key: str) -> None:
        with self._lock:
            self._objects.pop(key, None)

    def list(self, prefix: str = "") -> Iterator[str]:
        yield from [k for k in list(self._objects) if k.startswith(prefix)]

    def create(self, key: str, data: bytes | memoryview, durable: bool = True) -> bool:
        with self._lock:
            if key in self._objects:
                return False
            self._objects[key] = bytes(data)
            return True
