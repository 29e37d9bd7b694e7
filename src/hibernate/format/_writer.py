"""The one chunk writer: every blob of every file and checkpoint is cut, digested,
compressed and placed here.

A blob (a pickle stream or an out-of-band buffer) becomes chunks of at most ``CHUNK_SIZE``
raw bytes. Each chunk's digest (of its raw bytes) and its compression run in pool threads,
a bounded window ahead of the sequential placement, so the caller's thread keeps pickling.
Where the bytes go is a ``ChunkSink``: a ``.hib`` file (chunks at offsets, in order) or a
checkpoint store (chunks as content-addressed objects, written once). A sink that already
holds a chunk's content says so (``known``), and the chunk is neither compressed nor
written again: that is all deduplication is.

A writer made with ``background=True`` (saves to a file) also places chunks in a thread of
its own: the caller's thread goes on pickling the next value while the previous chunks are
digested, compressed and written. Placement keeps the order of the calls; at most
``AHEAD_BYTES`` wait to be placed (the caller waits beyond that), so memory stays bounded by
a few chunks; ``mark`` is placed in that order too, and a failed placement is raised to the
caller at its next call. ``blobs`` (and ``flush``) wait for everything queued.

A writer given a ``FastDigests`` cache (checkpoints: the same buffers are checkpointed
again and again) first takes an xxh3-128 of each large chunk (about 10 GB/s here, several
times BLAKE3) and computes the cryptographic digest only for content it has not seen in
this process; the cache maps (xxh3, length) to the digest and is never written anywhere.

Non-goals: what the blobs mean (see session/), the file's header and trailer (_file.py).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

from .._threads import submit
from ._codecs import Codec
from ._digests import Hash, default_digest, digest_function, later
from ._manifest import Blob, Chunk

__all__ = ["CHUNK_SIZE", "RAW", "BlobStream", "ChunkSink", "ChunkWriter", "FastDigests"]

CHUNK_SIZE = 4 << 20
RAW = Codec("raw")
WINDOW = 4  # chunks digested/compressed ahead of the one being placed
AHEAD_BYTES = 64 << 20  # background placement: raw bytes queued and not yet placed


class ChunkSink(Protocol):
    """Where chunks go. ``put`` places one encoded chunk and returns its record; ``known``
    returns the record of a chunk with that digest already held (or None); ``mark`` and
    ``rewind`` forget what was put since a mark (a failed value leaves nothing behind where
    the sink can take bytes back)."""

    def put(self, digest: str, raw: int, stored: bytes | memoryview, codec: str) -> Chunk: ...
    def known(self, digest: str, raw: int) -> Chunk | None: ...
    def mark(self) -> Any: ...
    def rewind(self, mark: Any) -> None: ...


Encoded = tuple[str, "bytes | memoryview | None"]  # digest, stored bytes (None: known)
FAST_MIN = 64 << 10  # smaller chunks are hashed directly: a lookup would not pay


class FastDigests:
    """(xxh3-128, length) -> digest of chunks this process has digested, per algorithm;
    bounded (cleared when full). Without the xxhash package it remembers nothing."""

    LIMIT = 1 << 20

    def __init__(self) -> None:
        self._seen: dict[tuple[str, bytes, int], str] = {}
        try:
            import xxhash
        except ImportError:
            self._xxh3: Callable[[memoryview], bytes] | None = None
        else:
            self._xxh3 = lambda view: bytes(xxhash.xxh3_128(view).digest())

    def digest(self, algorithm: str, hash: Hash, piece: memoryview) -> str:
        if self._xxh3 is None or len(piece) < FAST_MIN:
            return hash(piece)
        key = (algorithm, self._xxh3(piece), len(piece))
        found = self._seen.get(key)
        if found is None:
            found = hash(piece)
            if len(self._seen) >= self.LIMIT:
                self._seen.clear()
            self._seen[key] = found
        return found


class ChunkWriter:
    """Blobs by index over a ChunkSink: ``add_blob`` for a buffer in memory, ``open_stream``
    for one produced piece by piece. ``blobs`` is the list a manifest records."""

    def __init__(self, sink: ChunkSink, codec: Codec = RAW, digest: str | None = None,
                 chunk_size: int = CHUNK_SIZE,
                 on_bytes: Callable[[int], None] | None = None,
                 fast: FastDigests | None = None, background: bool = False) -> None:
        self.sink = sink
        self._fast = fast
        self.digest = digest or default_digest()
        self._hash: Hash = digest_function(self.digest)
        self._codec = codec
        self._chunk_size = chunk_size
        self._on_bytes = on_bytes
        # per blob: its chunks (placed, or being placed) and raw length; None: reserved by
        # an open stream
        self._blobs: list[tuple[list[Chunk | Future[Chunk]], int] | None] = []
        self.codecs_used: set[str] = set()
        self._placer: ThreadPoolExecutor | None = None
        if background:
            self._placer = ThreadPoolExecutor(1, thread_name_prefix="hibernate-write")
        self._queued: deque[tuple[Future[Any], int]] = deque()  # placements not yet seen done
        self._queued_bytes = 0

    # ---- encoding and placing -------------------------------------------------------

    def _encode(self, piece: memoryview) -> Encoded:
        digest = (self._hash(piece) if self._fast is None
                  else self._fast.digest(self.digest, self._hash, piece))
        if self.sink.known(digest, len(piece)) is not None:
            return digest, None
        return digest, self._codec.compress(piece)

    def _place(self, piece: memoryview, encoded: Encoded) -> Chunk:
        digest, stored = encoded
        chunk = self.sink.known(digest, len(piece)) if stored is None else None
        if chunk is None:
            if stored is None:  # known when encoded, gone since (a rewind): encode again
                stored = self._codec.compress(piece)
            codec = self._codec.name if len(stored) < len(piece) else "raw"
            chunk = self.sink.put(digest, len(piece), stored if codec != "raw" else piece,
                                  codec)
        if chunk.codec != "raw":
            self.codecs_used.add(chunk.codec)
        if self._on_bytes is not None:
            self._on_bytes(len(piece))
        return chunk

    def _pieces(self, view: memoryview) -> list[memoryview]:
        size = self._chunk_size
        return [view[i:i + size] for i in range(0, max(len(view), 1), size)]

    def place_all(self, pieces: list[memoryview]) -> list[Chunk | Future[Chunk]]:
        """Encode ``pieces`` in pool threads (a window ahead) and place them in order; a
        lone small piece is encoded here (a thread hand-off would cost more). In the
        background: queued, and the futures of their chunks returned."""
        if self._placer is not None:
            return [self._queue(piece) for piece in pieces]
        if len(pieces) == 1 and len(pieces[0]) < FAST_MIN:
            return [self._place(pieces[0], self._encode(pieces[0]))]
        jobs: list[Future[Encoded] | None] = [later(self._encode, p) for p in pieces[:WINDOW]]
        chunks: list[Chunk | Future[Chunk]] = []
        for i, piece in enumerate(pieces):
            if i + WINDOW < len(pieces):
                jobs.append(later(self._encode, pieces[i + WINDOW]))
            job = jobs[i]
            assert job is not None
            jobs[i] = None  # let the compressed bytes go once placed
            chunks.append(self._place(piece, job.result()))
        return chunks

    # ---- background placement -------------------------------------------------------

    def _queue(self, piece: memoryview) -> Future[Chunk]:
        assert self._placer is not None
        self._settle(len(piece))
        encoded = later(self._encode, piece) if len(piece) >= FAST_MIN else None
        placed = submit(self._placer, self._place_encoded, piece, encoded, drain=self.flush)
        self._queued.append((placed, len(piece)))
        self._queued_bytes += len(piece)
        return placed

    def _place_encoded(self, piece: memoryview, encoded: Future[Encoded] | None) -> Chunk:
        return self._place(piece, self._encode(piece) if encoded is None else encoded.result())

    def _settle(self, room: int = 0) -> None:
        """Take finished placements off the queue (raising the first failure) and wait for
        the oldest until ``room`` more bytes fit in ``AHEAD_BYTES`` (0: wait for all when
        ``room`` is negative)."""
        while self._queued:
            future, size = self._queued[0]
            if not future.done() and (room >= 0 and
                                      self._queued_bytes + room <= AHEAD_BYTES):
                return
            future.result()  # a failed placement (a full disk...) raises here
            self._queued.popleft()
            self._queued_bytes -= size

    def flush(self) -> None:
        """Wait until everything queued is placed (raises a placement's failure)."""
        self._settle(-1)

    def close(self) -> None:
        """Stop the placing thread once what is queued is done (failures are dropped: the
        caller is ending the write either way). Idempotent."""
        if self._placer is not None:
            self._placer.shutdown(wait=True)
            self._placer = None
            self._queued.clear()
            self._queued_bytes = 0

    # ---- blobs ------------------------------------------------------------------------

    def add_blob(self, data: bytes | bytearray | memoryview) -> int:
        """Write one buffer as chunks; return its index. In the background the buffer is
        read after this returns: it must not change until ``flush`` (the session's values
        do not change while they are saved)."""
        view = memoryview(data).cast("B")
        self._blobs.append((self.place_all(self._pieces(view)), len(view)))
        return len(self._blobs) - 1

    def add_chunks(self, chunks: list[Chunk]) -> int:
        """A blob made of chunks the sink already holds (reused from an earlier manifest)."""
        self._blobs.append((list(chunks), sum(c.raw for c in chunks)))
        return len(self._blobs) - 1

    def open_stream(self) -> BlobStream:
        """A blob written as it is produced (a pickle stream), in bounded chunks; other blobs
        may be added while it is open. Its index is reserved now and filled by ``close``."""
        self._blobs.append(None)
        return BlobStream(self, len(self._blobs) - 1)

    @property
    def blobs(self) -> tuple[Blob, ...]:
        assert all(b is not None for b in self._blobs), "a blob stream was left open"
        self.flush()
        return tuple(Blob(tuple(c if isinstance(c, Chunk) else c.result() for c in b[0]))
                     for b in self._blobs if b is not None)

    def length(self, index: int) -> int:
        blob = self._blobs[index]
        return 0 if blob is None else blob[1]

    def mark(self) -> tuple[int, Any]:
        """Where the sink stands after everything queued so far (placed in that order)."""
        if self._placer is None:
            return len(self._blobs), self.sink.mark()
        self._settle()
        return len(self._blobs), submit(self._placer, self.sink.mark, drain=self.flush)

    def rollback(self, mark: tuple[int, Any]) -> None:
        """Forget the blobs added since ``mark`` and take their bytes back from the sink."""
        at = mark[1]
        if self._placer is not None:
            self.flush()
            at = at.result()
        del self._blobs[mark[0]:]
        self.sink.rewind(at)


class BlobStream:
    """A file-like sink for one blob: whole chunks are placed straight from the caller's
    memory (a large Arrow buffer is never copied); only a partial chunk is buffered."""

    def __init__(self, writer: ChunkWriter, index: int) -> None:
        self._writer, self.index = writer, index
        self._buf = bytearray()
        self._chunks: list[Chunk | Future[Chunk]] = []
        self._length = 0

    def _emit(self, piece: memoryview) -> None:
        self._chunks.extend(self._writer.place_all([piece]))

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Whole chunks of ``data`` are placed from its memory (read after this returns
        when placing in the background: the pickler and pyarrow hand over bytes they do
        not reuse); a partial chunk is copied."""
        view = memoryview(data).cast("B")
        self._length += len(view)
        size = self._writer._chunk_size
        pos = 0
        if self._buf:
            pos = min(size - len(self._buf), len(view))
            self._buf += view[:pos]
            if len(self._buf) < size:
                return len(view)
            self._emit(memoryview(self._buf))
            self._buf = bytearray()
        if len(view) - pos >= size:
            whole = (len(view) - pos) // size * size
            self._chunks.extend(self._writer.place_all(
                self._writer._pieces(view[pos:pos + whole])))
            pos += whole
        self._buf += view[pos:]
        return len(view)

    def close(self) -> int:
        if self._buf or not self._chunks:
            self._emit(memoryview(self._buf))
            self._buf = bytearray()
        self._writer._blobs[self.index] = (self._chunks, self._length)
        return self.index
