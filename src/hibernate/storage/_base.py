"""The Store interface: where a hibernate file's bytes live.

A store is a flat namespace of keys holding immutable byte strings. Reading is by ranges on
a handle that is pinned where the store can pin (``pinned_reads``: the version that was
opened stays the version that is read; elsewhere a replaced object fails its digests
instead of mixing versions); writing goes
through an atomic writer that either commits a complete object or leaves nothing.

A store says what it can do through flags, never through stubs that raise:
``atomic_create`` (``create`` is a conditional put: of two racing writers exactly one
wins), ``WriteHandle.can_truncate`` (a write in progress can be cut back, so a failed value
leaves no dead bytes), ``ReadHandle.concurrent`` (ranged reads may run in parallel).
Every failure of the backend is a ``StorageError``.

Non-goals: directories, appends, in-place updates, locking (checkpoints build a lock on
``create``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from types import TracebackType

__all__ = ["ReadHandle", "Store", "WriteHandle"]


class ReadHandle(ABC):
    """One version of one object, read by byte ranges. ``bytes_read`` counts what was
    fetched; ``concurrent`` says ranged reads may run in parallel threads."""

    size: int
    bytes_read: int = 0
    concurrent: bool = False

    @abstractmethod
    def read(self, start: int, length: int) -> bytes:
        """Return exactly ``length`` bytes from ``start`` (StorageError if that is past the end)."""

    @abstractmethod
    def readinto(self, start: int, buf: memoryview) -> None:
        """Fill ``buf`` with the bytes that begin at ``start``."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> ReadHandle:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class WriteHandle(ABC):
    """A sequential writer whose object appears only on ``commit()``. Where
    ``can_truncate`` is true, ``truncate(size)`` cuts what was written back to ``size``."""

    can_truncate: bool = False

    @abstractmethod
    def write(self, data: bytes | memoryview) -> None: ...

    @abstractmethod
    def commit(self) -> None:
        """Make the object visible, durably and atomically."""

    @abstractmethod
    def discard(self) -> None:
        """Drop everything written; the previous object (if any) is untouched."""


class Store(ABC):
    """Where bytes live: ranged reads, atomic writes, exists, delete, list."""

    atomic_create: bool = False
    pinned_reads: bool = True

    @abstractmethod
    def open_read(self, key: str) -> ReadHandle: ...

    @abstractmethod
    def open_write(self, key: str) -> WriteHandle: ...

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def delete(self, key: str) -> None: ...

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[str]: ...

    def get(self, key: str, start: int = 0, end: int | None = None) -> bytes:
        """Bytes ``start:end`` of ``key`` (a convenience over ``open_read``)."""
        with self.open_read(key) as h:
            stop = h.size if end is None else min(end, h.size)
            return h.read(start, max(0, stop - start))

    def put(self, key: str, data: bytes | memoryview) -> None:
        """Write a whole object atomically (a convenience over ``open_write``)."""
        out = self.open_write(key)
        try:
            out.write(data)
            out.commit()
        except BaseException:
            out.discard()
            raise

    def create(self, key: str, data: bytes | memoryview, durable: bool = True) -> bool:
        """Write ``key`` only if it does not exist; False if it did. Atomic where
        ``atomic_create`` is true; elsewhere a check then a put (a race can lose).
        ``durable=False``: the object need not survive a crash (a lock), where that saves
        a flush."""
        if self.exists(key):
            return False
        self.put(key, data)
        return True
