"""The Serializer interface: turn one object into (meta, buffers) and back.

``meta`` is a small JSON-able dict stored in the manifest; ``buffers`` are byte buffers
stored as blobs, zero-copy where the object allows it. A serializer never sees files.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = ["Decline", "Dumped", "Serializer", "StreamingSerializer"]

Buffer = bytes | bytearray | memoryview


@dataclass
class Dumped:
    """What ``dump`` produced: manifest meta and buffers (the first is often a stream)."""

    meta: dict[str, Any]
    buffers: list[Buffer]

    @property
    def nbytes(self) -> int:
        return sum(memoryview(b).nbytes for b in self.buffers)


class Serializer(ABC):
    name: ClassVar[str]
    version: ClassVar[int]

    def config(self) -> dict[str, Any]:
        """Settings that a reader needs to know; stored in the manifest."""
        return {}

    @abstractmethod
    def handles(self, obj: object) -> bool: ...

    @abstractmethod
    def dump(self, obj: object) -> Dumped:
        """Serialize ``obj`` into JSON-able meta and zero-copy buffers where possible."""

    @abstractmethod
    def load(self, meta: dict[str, Any], buffers: Sequence[Buffer]) -> object: ...

    def raw_buffers(self, meta: Mapping[str, Any], count: int) -> set[int]:
        """Which of a dumped value's ``count`` buffers are raw numeric bytes handed over as
        they are (never decoded), so ``mmap=True`` may map them. None by default."""
        return set()


class StreamingSerializer(Serializer):
    """A serializer whose first buffer is a stream written as it is produced (a pickle or
    Arrow IPC stream): saves call ``dump_to`` so no stream is ever held whole in memory."""

    @abstractmethod
    def dump_to(self, obj: object, stream: Any, add_buffer: Any) -> tuple[dict[str, Any],
                                                                           list[int]]:
        """Write ``obj``'s stream to ``stream`` (a file-like ``write``); hand any further
        buffers to ``add_buffer(buffer) -> blob index``. Returns (meta, those indices)."""

    def dump(self, obj: object) -> Dumped:
        stream = _Collect()
        extra: list[Buffer] = []

        def add(buf: Buffer) -> int:
            extra.append(buf)
            return len(extra)

        meta, _ = self.dump_to(obj, stream, add)
        return Dumped(meta, [bytes(stream.data), *extra])


class _Collect:
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, b: Buffer) -> int:
        self.data += b
        return memoryview(b).nbytes


class Decline(Exception):
    """Raised by ``dump`` when a serializer that ``handles`` an object's type finds it
    cannot store this one natively (an object column of mixed types, say): the next
    serializer (in the end pickle) takes the value instead."""
