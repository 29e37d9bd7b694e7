"""Chunk codecs: how a chunk's raw bytes are stored. A plain registry of tiny classes.

``raw`` stores bytes as they are (and only raw chunks can be memory-mapped). ``zstd``
compresses each chunk on its own (so chunks compress and decompress in parallel threads,
and a ranged read never needs a neighbour); zstandard is imported only when used.
The user-facing names: ``compression=None`` (raw), ``"fast"`` (zstd level 1),
``"small"`` (zstd level 9), or ``"zstd:N"`` for an explicit level.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["CODECS", "Codec", "resolve_compression"]

INSTALL_HINT = "compression needs zstandard: pip install 'hibernate[compression]'"
LEVELS = {"fast": 1, "small": 9}


@dataclass(frozen=True)
class Codec:
    name: str
    level: int = 0

    def compress(self, data: memoryview) -> bytes | memoryview:
        if self.name == "raw":
            return data
        return _zstd().ZstdCompressor(level=self.level).compress(data)  # type: ignore[no-any-return]

    def decompress(self, stored: bytes | bytearray | memoryview, raw_length: int
                   ) -> bytes | bytearray:
        if self.name == "raw":
            return bytes(stored)
        # A frame may declare any content size: read into the chunk's recorded length, then
        # one byte more, so a hostile frame cannot make us allocate more (and the chunk is
        # held once, never as pieces and their join).
        out = bytearray(raw_length)
        view = memoryview(out)
        got = 0
        with _zstd().ZstdDecompressor().stream_reader(stored) as reader:
            while got < raw_length:
                n = reader.readinto(view[got:])
                if not n:
                    break
                got += n
            extra = reader.read(1)
        view.release()
        if got != raw_length or extra:
            raise ValueError("a compressed chunk does not expand to its recorded length")
        return out


def _zstd() -> Any:
    try:
        import zstandard
    except ImportError:
        from ..errors import HibernateError

        raise HibernateError(INSTALL_HINT) from None
    return zstandard


CODECS = ("raw", "zstd")


def resolve_compression(compression: str | None) -> Codec:
    """The codec for a ``compression=`` argument (ValueError for an unknown one)."""
    if compression is None or compression == "raw":
        return Codec("raw")
    if compression in LEVELS:
        codec = Codec("zstd", LEVELS[compression])
    elif compression.startswith("zstd:") and compression[5:].lstrip("-").isdigit():
        codec = Codec("zstd", int(compression[5:]))
    elif compression == "zstd":
        codec = Codec("zstd", 3)
    else:
        raise ValueError(f"unknown compression {compression!r}: use None, 'fast', 'small' "
                         "or 'zstd:LEVEL'")
    _zstd()
    return codec
