"""The Store interface: where a hibernate file's bytes live.

A store is a flat namespace of keys holding immutable byte strings. Reading is by ranges on
a pinned handle (the version that was opened stays the version that is read); writing goes
through an atomic writer that either commits a complete object or leaves nothing.

Non-goals: directories, appends, in-place updates, locking.
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
    """A sequential writer whose object appears only on ``commit()``."""

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
