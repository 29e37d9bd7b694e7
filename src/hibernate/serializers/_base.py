"""The Serializer interface: turn one object into (meta, buffers) and back.

``meta`` is a small JSON-able dict stored in the manifest; ``buffers`` are byte buffers
stored as blobs, zero-copy where the object allows it. A serializer never sees files.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = ["Decline", "Dumped", "Serializer"]

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


class Decline(Exception):
    """Raised by ``dump`` when a serializer that ``handles`` an object's type finds it
    cannot store this one natively (an object column of mixed types, say): the next
    serializer (in the end pickle) takes the value instead."""
