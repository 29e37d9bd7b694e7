"""The one blob reader: every file, snapshot, checkpoint, export and verify reads here.

A ``ChunkSource`` hands out a chunk's stored bytes (a ``.hib`` file by ranged reads at its
offset, a checkpoint store by fetching the chunk's object); ``BlobReader`` decodes each
chunk, checks its digest and assembles the blob. Remote or compressed chunks are fetched and
decoded by parallel threads, each hashing its own; local raw chunks are read in order while
pool threads hash the previous ones. With ``mmap=True`` a source that can map a blob (a
local file; raw, contiguous and at least ``MMAP_MIN`` bytes) hands out a copy-on-write view
whose digests are *not* checked (``hibernate verify`` does that).

Non-goals: what the blobs mean, which manifest to trust (that is decided before a reader
exists).
"""

from __future__ import annotations

import mmap
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from .._limits import max_expansion
from ..errors import FormatError, IntegrityError
from ._codecs import CODECS, Codec
from ._digests import digest_function, fetch_pool, later
from ._manifest import Blob, Chunk

__all__ = ["MAX_CHUNK", "MMAP_MIN", "BlobReader", "ChunkSource", "check_codecs", "verify_chunk"]

MAX_CHUNK = 64 << 20  # the most a chunk may hold raw
MMAP_MIN = 1 << 20    # with mmap=True, raw blobs at least this large are mapped, not read
FRESH_MIN = 1 << 20   # blobs at least this large are read into memory never zero-filled


def _fresh(n: int) -> bytearray | memoryview:
    """Writable memory for ``n`` bytes about to be read into. ``bytearray(n)`` writes n
    zeros first (a whole pass over memory, for a gigabyte a tenth of a second or more); an
    anonymous mapping's pages are only made when the read touches them."""
    if n < FRESH_MIN:
        return bytearray(n)
    return memoryview(mmap.mmap(-1, n))


class ChunkSource(Protocol):
    """Where chunks come from. ``concurrent``: chunks may be fetched by parallel threads;
    ``can_map``: ``map_blob`` may return views (a local file)."""

    concurrent: bool
    can_map: bool

    def proven(self) -> int:
        """Stored bytes known to be there before anything is read: a file's size (its
        chunks lie inside it); 0 for a store, whose record's claims about its objects are
        checked only as each is read."""

    def check_expansion(self, blobs: Sequence[Blob]) -> None:
        """FormatError, before anything is read, when the blobs declare more raw bytes than
        ``HIBERNATE_MAX_EXPANSION`` times what the source holds for them (a file: its size;
        a store: see ``StoreSource``). Every reader draws from this one budget."""

    def read_chunk(self, chunk: Chunk) -> bytes | bytearray | memoryview:
        """The chunk's stored bytes (StorageError or IntegrityError when they are missing)."""

    def read_raw_into(self, chunk: Chunk, out: memoryview) -> None:
        """Fill ``out`` with a raw chunk's bytes (no copy where the source allows)."""

    def map_blob(self, blob: Blob) -> memoryview | None:
        """A memory-mapped view of a whole raw blob, or None where that is not possible."""


_HEX64 = re.compile(r"[0-9a-f]{64}\Z")


def check_codecs(blobs: Sequence[Blob]) -> None:
    """Every chunk's codec is one this hibernate decodes (installed, too), its digest is 64
    lowercase hex digits (a store names objects by it: nothing else may become a path), and
    no chunk claims more than ``MAX_CHUNK`` raw bytes: checked before anything is
    allocated."""
    for blob in blobs:
        for c in blob.chunks:
            if not _HEX64.match(c.digest):
                raise FormatError("a chunk's digest is not 64 hex digits")
            if c.codec not in CODECS:
                raise FormatError(f"unknown chunk codec {c.codec!r}")
            if c.raw > MAX_CHUNK or (c.codec == "raw" and c.stored not in (c.raw, 0)):
                raise FormatError("a chunk's recorded lengths are impossible")
    if any(c.codec == "zstd" for b in blobs for c in b.chunks):
        try:
            import zstandard  # noqa: F401
        except ImportError:
            raise FormatError("this file has zstd-compressed chunks: install zstandard "
                              "(pip install 'hibernate[compression]') to read it") from None


def _where(c: Chunk) -> str:
    return f"the chunk at byte {c.offset}" if c.offset else f"chunk {c.digest[:12]}"


def _decode(c: Chunk, stored: bytes | bytearray | memoryview) -> bytes | bytearray:
    try:
        return Codec(c.codec).decompress(stored, c.raw)
    except Exception as e:
        raise IntegrityError(f"damaged data: {_where(c)} does not decompress "
                             f"({type(e).__name__}: {e})") from None


def verify_chunk(c: Chunk, stored: bytes | bytearray | memoryview, digest: str) -> None:
    """IntegrityError unless ``stored`` decodes to the chunk's recorded raw bytes (for
    copies that keep stored bytes as they are: export and import)."""
    raw = stored if c.codec == "raw" else _decode(c, stored)
    if len(raw) != c.raw or digest_function(digest)(memoryview(raw)) != c.digest:
        raise IntegrityError(f"damaged data: {_where(c)} does not match its digest")


class _Budget:
    """The expansion budget as a reader goes, on the bytes it really fetched: a chunk is
    decompressed only while everything decompressed stays within ``max_expansion()`` times
    the stored bytes read or proven there (a file's size), plus one ``FLOOR``. The up-front
    check reads what the manifest or record claims; this one holds when a claim lies (a
    store's record can claim any size for a chunk object, and name one tiny object a
    thousand times)."""

    FLOOR = 16 << 20

    def __init__(self, proven: int) -> None:
        self._lock = threading.Lock()
        self._raw, self._stored = 0, proven

    def charge(self, raw: int, stored: int) -> None:
        with self._lock:
            self._raw += raw
            self._stored += stored
            if self._raw > max_expansion() * self._stored + self.FLOOR:
                raise FormatError(
                    f"the data decompresses to more than {max_expansion()} times the "
                    f"{self._stored} bytes it stores: refused before decompressing (set "
                    "HIBERNATE_MAX_EXPANSION to read a legitimately compressible file)")


def is_own(manifest: Any) -> bool:
    """The manifest is signed with one of the user's keys (made by the user)."""
    return str(getattr(manifest, "signature", "")) == "valid"


class BlobReader:
    """Reads the blobs of a checked manifest from a source, verifying every chunk."""

    def __init__(self, source: ChunkSource, blobs: Sequence[Blob], digest: str,
                 mmap: bool = False, on_bytes: Callable[[int], None] | None = None,
                 mappable: frozenset[int] = frozenset(), own: bool = False) -> None:
        """``mmap``: blobs in ``mappable`` (raw numeric buffers: never a stream that is
        decoded) may be handed out as views of the mapped file, unchecked. ``own``: the
        manifest is signed with the user's key, so it is held to no expansion budget (the
        budget bounds what a hand-built file makes a reader allocate; the user's own zeros
        compress far past any ratio)."""
        if mmap and not source.can_map:
            raise ValueError("mmap=True needs a .hib file on local disk (remote files and "
                             "checkpoint stores are read, not mapped)")
        if not own:
            source.check_expansion(blobs)
        self._budget: _Budget | None = None if own else _Budget(source.proven())
        self._source = source
        self._blobs = blobs
        self._hash = digest_function(digest)
        self._mmap = mmap
        self._mappable = mappable
        self._on_bytes = on_bytes

    def _fetch(self, c: Chunk, piece: memoryview) -> None:
        if c.codec == "raw":
            self._source.read_raw_into(c, piece)
            self._charge(c.raw, c.raw)
            return
        stored = self._source.read_chunk(c)
        self._charge(c.raw, len(stored))  # before it is decompressed
        data = _decode(c, stored)
        if len(data) != len(piece):
            raise IntegrityError(f"damaged data: {_where(c)} has the wrong length")
        piece[:] = data

    def _charge(self, raw: int, stored: int) -> None:
        if self._budget is not None:
            self._budget.charge(raw, stored)

    def _fetch_and_hash(self, cp: tuple[Chunk, memoryview]) -> str:
        self._fetch(*cp)
        return self._hash(cp[1])

    def read(self, index: int) -> bytearray | memoryview:
        """The raw bytes of one blob; IntegrityError if any chunk's digest does not match.
        (A mapped blob is a memoryview of the map, unchecked.)"""
        blob = self._blobs[index]
        if self._mmap and index in self._mappable and blob.length >= MMAP_MIN:
            mapped = self._source.map_blob(blob)
            if mapped is not None:
                return mapped
        out = _fresh(blob.length)
        view = memoryview(out)
        pieces = []
        pos = 0
        for c in blob.chunks:
            pieces.append((c, view[pos:pos + c.raw]))
            pos += c.raw
        compressed = any(c.codec != "raw" for c, _ in pieces)
        if len(pieces) > 1 and (compressed or self._source.concurrent):
            digests = list(fetch_pool().map(self._fetch_and_hash, pieces))
        else:  # read in order, hash a chunk in a pool thread while the next is read
            futures = []
            for c, piece in pieces:
                self._fetch(c, piece)
                futures.append(later(self._hash, piece))
            digests = [f.result() for f in futures]
        for (c, _), digest in zip(pieces, digests):
            if digest != c.digest:
                raise IntegrityError(f"damaged data: {_where(c)} does not match its digest")
        if self._on_bytes is not None:
            self._on_bytes(len(out))
        return out

    def pieces(self, index: int) -> Iterator[bytes | bytearray | memoryview]:
        """The raw bytes of one blob, a chunk at a time and in order, each checked against
        its digest before it is handed out: for readers that hold a few chunks, never the
        whole blob (the trust listing)."""
        for c in self._blobs[index].chunks:
            data: bytes | bytearray | memoryview
            if c.codec == "raw":
                data = bytearray(c.raw)
                self._source.read_raw_into(c, memoryview(data))
                self._charge(c.raw, c.raw)
            else:
                stored = self._source.read_chunk(c)
                self._charge(c.raw, len(stored))
                data = _decode(c, stored)
            if len(data) != c.raw:
                raise IntegrityError(f"damaged data: {_where(c)} has the wrong length")
            if self._hash(memoryview(data)) != c.digest:
                raise IntegrityError(f"damaged data: {_where(c)} does not match its digest")
            yield data
            del data  # not held while the next one is read
