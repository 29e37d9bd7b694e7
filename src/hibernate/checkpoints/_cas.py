"""A checkpoint store as a ChunkSink and a ChunkSource: content-addressed chunk objects.

Each chunk is one object named by the digest of its raw bytes; its codec is in the name::

    chunks/ab/cdef...        a raw chunk (BLAKE3 of its bytes)
    chunks/ab/cdef....zst    a zstd-compressed chunk
    objects/ab/cdef...       a raw chunk of a format-v1 store (SHA-256), read only

A chunk is written only if the store has no chunk with that digest in any codec, so the same
data is stored once however it was compressed; the chunks already there are listed once per
checkpoint. Uploads run in a few threads (object stores answer slowly, in parallel);
``rewind`` deletes what this sink wrote since a mark, so a value that fails leaves nothing.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from .._limits import max_expansion
from ..errors import IntegrityError, StorageError
from ..format import Blob, Chunk, check_expansion
from ..storage import Store

__all__ = ["StoreSink", "StoreSource", "chunk_key", "known_chunks", "legacy_key",
           "parse_chunk_key"]

SUFFIX = {"raw": "", "zstd": ".zst"}
UPLOADS = 4  # objects written at once
IN_FLIGHT = 8  # chunks queued for upload before the writer waits
REFERENCE = 120  # bytes a chunk reference takes in a record, at the least
RECORD_FLOOR = 1 << 10  # bytes of a record beside its references (what hibernate writes)


def chunk_key(digest: str, codec: str) -> str:
    return f"chunks/{digest[:2]}/{digest[2:]}{SUFFIX[codec]}"


def legacy_key(digest: str) -> str:
    return f"objects/{digest[:2]}/{digest[2:]}"


def parse_chunk_key(key: str) -> tuple[str, str] | None:
    """(digest, codec) of a ``chunks/`` key, or None for anything else."""
    parts = key.split("/")
    if len(parts) != 3 or parts[0] != "chunks":
        return None
    name, codec = parts[2], "raw"
    if name.endswith(".zst"):
        name, codec = name[:-4], "zstd"
    digest = parts[1] + name
    if len(digest) != 64 or any(ch not in "0123456789abcdef" for ch in digest):
        return None
    return digest, codec


# What this process knows a store holds: url -> (its prune generation then, digest -> codec).
# Chunks are only deleted by a prune (which changes the generation) or by the rewind of the
# checkpoint that wrote them (under the store's lock, before anyone else could list them),
# so a listing stays true until the generation changes.
_KNOWN: dict[str, tuple[bytes | None, dict[str, str]]] = {}


def _listed(store: Store) -> dict[str, str]:
    known: dict[str, str] = {}
    for key in store.list("chunks/"):
        parsed = parse_chunk_key(key)
        if parsed is not None:
            known.setdefault(*parsed)
    return known


def known_chunks(store: Store, generation: bytes | None) -> dict[str, str]:
    """digest -> codec of the chunks the store holds (listed once per prune generation)."""
    where = f"{type(store).__name__}:{getattr(store, 'root', '')}:{id(getattr(store, 'fs', 0))}"
    cached = _KNOWN.get(where)
    if cached is not None and cached[0] == generation:
        return cached[1]
    known = _listed(store)
    _KNOWN[where] = (generation, known)
    return known


class StoreSink:
    """Chunks written as objects of ``store`` (call ``flush`` before publishing anything
    that refers to them). ``known``: digest -> codec of what the store holds (updated as
    chunks are written and rewound)."""

    def __init__(self, store: Store, known: dict[str, str] | None = None) -> None:
        self._store = store
        self._known = _listed(store) if known is None else known
        self._written: list[str] = []  # keys put, in order
        self._theirs: set[str] = set()  # of those, the ones that were there already
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None  # started by the first upload
        self._pending: deque[Future[None]] = deque()
        self.bytes_written = 0

    def known(self, digest: str, raw: int) -> Chunk | None:
        codec = self._known.get(digest)
        return None if codec is None else Chunk(0, raw, 0, codec, digest)

    def _create(self, key: str, stored: bytes | memoryview) -> None:
        """Write a chunk object unless it is there (written by another process meanwhile):
        only what this sink created is ever rewound."""
        created = self._store.create(key, stored)
        with self._lock:
            if created:
                self.bytes_written += len(stored)
            else:
                self._theirs.add(key)

    def put(self, digest: str, raw: int, stored: bytes | memoryview, codec: str) -> Chunk:
        key = chunk_key(digest, codec)
        with self._lock:
            self._known[digest] = codec
            self._written.append(key)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(UPLOADS, thread_name_prefix="hibernate-upload")
        self._pending.append(self._pool.submit(self._create, key, stored))
        while len(self._pending) > IN_FLIGHT:
            self._pending.popleft().result()
        return Chunk(0, raw, len(stored), codec, digest)

    def flush(self) -> None:
        """Wait for every upload; the first failure is raised (a StorageError)."""
        while self._pending:
            self._pending.popleft().result()

    def mark(self) -> int:
        return len(self._written)

    def rewind(self, mark: int) -> None:
        self.flush()
        with self._lock:
            gone, self._written = self._written[mark:], self._written[:mark]
        for key in gone:
            if key in self._theirs:
                continue
            self._store.delete(key)
            parsed = parse_chunk_key(key)
            if parsed is not None:
                self._known.pop(parsed[0], None)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)


class StoreSource:
    """Chunks fetched from their objects (in parallel threads by the reader).

    The expansion budget: a store deduplicates, so a record can name one small object any
    number of times, and the store's size on disk says nothing about what reading a
    checkpoint allocates. A checkpoint counts as what its export to a ``.hib`` file would
    hold: the bytes of the chunk object each reference names, counting every reference,
    plus what the references take in its record (at least ``REFERENCE`` bytes each: a digest
    and four fields) and ``RECORD_FLOOR`` for the rest of the record (about the smallest
    record hibernate writes). The declared raw total may be at most
    ``HIBERNATE_MAX_EXPANSION`` times that, checked before anything is read. A reference's
    object size is its recorded ``stored`` length (a raw chunk's is its raw length), held to
    it when the object is read; a compressed chunk reused from the store is recorded with
    ``stored`` 0, and its object's size is asked of the store (once per object), only when
    the recorded lengths do not cover the data already.
    """

    concurrent = True
    can_map = False

    def __init__(self, store: Store, legacy: bool = False) -> None:
        self._store = store
        self._legacy = legacy
        self._sizes: dict[str, int] = {}  # key -> size, of the objects asked about
        self.bytes_read = 0

    def key(self, chunk: Chunk) -> str:
        return legacy_key(chunk.digest) if self._legacy else chunk_key(chunk.digest,
                                                                       chunk.codec)

    def proven(self) -> int:
        return 0  # a record's claims about its objects are checked as each is read

    def check_expansion(self, blobs: Sequence[Blob]) -> None:
        chunks = [c for b in blobs for c in b.chunks]
        size = RECORD_FLOOR + sum(REFERENCE + _recorded(c) for c in chunks)
        total = sum(c.raw for c in chunks)
        if total > max_expansion() * size:  # objects recorded as 0 bytes: ask their sizes
            size += sum(self._size(c) for c in chunks if not _recorded(c))
        check_expansion(blobs, size, "the checkpoint")

    def _size(self, chunk: Chunk) -> int:
        key = self.key(chunk)
        if key not in self._sizes:
            try:
                with self._store.open_read(key) as handle:
                    self._sizes[key] = handle.size
            except StorageError:
                self._sizes[key] = 0  # missing: reading it fails its entry
        return self._sizes[key]

    def read_chunk(self, chunk: Chunk) -> bytes:
        key = self.key(chunk)
        try:
            data = self._store.get(key)
        except StorageError as e:
            raise IntegrityError(f"chunk {chunk.digest[:12]} is missing from the store: {e}"
                                 ) from None
        self.bytes_read += len(data)
        expected = _recorded(chunk) or self._sizes.get(key)
        if chunk.codec != "raw" and expected is not None and len(data) != expected:
            raise IntegrityError(f"chunk {chunk.digest[:12]} is {len(data)} bytes in the "
                                 f"store, not the {expected} its record says")
        return data

    def read_raw_into(self, chunk: Chunk, out: memoryview) -> None:
        data = self.read_chunk(chunk)
        if len(data) != len(out):
            raise IntegrityError(f"chunk {chunk.digest[:12]} has the wrong length")
        out[:] = data

    def map_blob(self, blob: Blob) -> memoryview | None:
        return None


def _recorded(chunk: Chunk) -> int:
    """The object size a chunk's record gives: a raw chunk's object is its raw bytes."""
    return chunk.raw if chunk.codec == "raw" else chunk.stored
