"""The hibernate file format, version 1: header, chunked blobs, manifest, trailer.

Layout (all integers little-endian)::

    header   16 B   magic b"\\x89HIB\\r\\n\\x1a\\n", u32 format version, u32 flags (0)
    chunks          each blob's chunks, every chunk starting on a 64-byte boundary,
                    padding is zeros
    manifest        UTF-8 JSON (see _manifest.py), at most MAX_MANIFEST_BYTES
    trailer 128 B   u64 manifest offset, u64 manifest length, 32 B SHA-256 of the manifest,
                    16 B key id, 32 B HMAC-SHA256(key, header + manifest), u32 format
                    version, u32 flags, 12 B zero, u32 CRC-32 of the preceding 116 bytes,
                    magic b"\\x89HIBEND\\n"

The file is written front to back in one pass (so it can stream to object storage) and read
from the back: trailer, then manifest, then only the chunks that are needed (ranged reads).
Every chunk records the digest of its raw bytes (BLAKE3, or SHA-256 in files written where
the blake3 package is missing and in checkpoint exports; the manifest's ``digest`` names it),
so damage is found per chunk.
"""

from __future__ import annotations

import hashlib
import os
import struct
import zlib
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace

from . import _trust
from ._codecs import CODECS, Codec
from ._manifest import FORMAT_VERSION, MAX_MANIFEST_BYTES, Blob, Chunk, Manifest
from .errors import FormatError, IntegrityError, VersionError
from .storage import ReadHandle, WriteHandle

__all__ = ["BlobReader", "BlobStream", "FileWriter", "read_manifest"]

MAGIC = b"\x89HIB\r\n\x1a\n"
TRAILER_MAGIC = b"\x89HIBEND\n"
HEADER = struct.Struct("<8sII")
TRAILER_BODY = struct.Struct("<QQ32s16s32sII12s")
TRAILER_SIZE = TRAILER_BODY.size + 4 + len(TRAILER_MAGIC)
ALIGN = 64
CHUNK_SIZE = 4 << 20
MAX_CHUNK = 64 << 20  # the most a compressed chunk may expand to
MMAP_MIN = 1 << 20  # with mmap=True, raw blobs at least this large are mapped, not read
RAW = Codec("raw")
assert TRAILER_SIZE == 128

_pool: tuple[int, ThreadPoolExecutor] | None = None


def _hash_pool() -> ThreadPoolExecutor:
    """Threads that hash chunks; made per process (a forked child has none of its parent's
    threads, so it must not reuse the parent's pool)."""
    global _pool
    if _pool is None or _pool[0] != os.getpid():
        _pool = (os.getpid(), ThreadPoolExecutor(max_workers=2,
                                                 thread_name_prefix="hibernate-hash"))
    return _pool[1]


def _sha256(view: memoryview) -> str:
    return hashlib.sha256(view).hexdigest()


def _blake3(view: memoryview) -> str:
    from blake3 import blake3  # a dependency; 3-4x SHA-256's speed, GIL released

    return blake3(view).hexdigest()


# Chunk digests a file may name in its manifest; the key is what the manifest records.
DIGESTS: dict[str, Callable[[memoryview], str]] = {"sha256": _sha256, "blake3": _blake3}


def default_digest() -> str:
    """BLAKE3 where the blake3 package is installed (it is a dependency), else SHA-256."""
    try:
        import blake3  # noqa: F401
    except ImportError:
        return "sha256"
    return "blake3"


def digest_function(name: str) -> Callable[[memoryview], str]:
    fn = DIGESTS.get(name)
    if fn is None:
        raise FormatError(f"unknown chunk digest {name!r}")
    if name == "blake3":
        try:
            import blake3  # noqa: F401
        except ImportError:
            raise FormatError("this file's chunks are digested with BLAKE3: install the "
                              "blake3 package (pip install blake3) to read it") from None
    return fn


_fetch: tuple[int, ThreadPoolExecutor] | None = None


def _fetch_pool() -> ThreadPoolExecutor:
    """Threads for parallel ranged reads from remote stores (per process, like the hash pool)."""
    global _fetch
    if _fetch is None or _fetch[0] != os.getpid():
        _fetch = (os.getpid(), ThreadPoolExecutor(max_workers=8,
                                                  thread_name_prefix="hibernate-fetch"))
    return _fetch[1]


Hash = Callable[[memoryview], str]


def _encode(hash: Hash, codec: Codec, piece: memoryview) -> tuple[str, bytes | memoryview]:
    return hash(piece), codec.compress(piece)


def _encode_later(hash: Hash, codec: Codec, piece: memoryview
                  ) -> Future[tuple[str, bytes | memoryview]]:
    try:
        return _hash_pool().submit(_encode, hash, codec, piece)
    except RuntimeError:  # interpreter shutting down: no new threads
        done: Future[tuple[str, bytes | memoryview]] = Future()
        done.set_result(_encode(hash, codec, piece))
        return done


def _hash_later(hash: Hash, view: memoryview) -> Future[str]:
    """Hash in a pool thread; inline when threads can no longer start (at interpreter exit,
    where ``save_on_exit`` runs)."""
    try:
        return _hash_pool().submit(hash, view)
    except RuntimeError:
        done: Future[str] = Future()
        done.set_result(hash(view))
        return done


def header_bytes() -> bytes:
    return HEADER.pack(MAGIC, FORMAT_VERSION, 0)


class FileWriter:
    """Writes one hibernate file to a WriteHandle, front to back."""

    def __init__(self, out: WriteHandle, chunk_size: int = CHUNK_SIZE,
                 codec: Codec = RAW, on_bytes: Callable[[int], None] | None = None,
                 digest: str | None = None) -> None:
        """``digest``: the chunk digest to record (default: ``default_digest()``)."""
        self.digest = digest or default_digest()
        self._hash = digest_function(self.digest)
        self._on_bytes = on_bytes
        self._out = out
        self._chunk_size = chunk_size
        self._codec = codec
        self._header = header_bytes()
        self._pos = 0
        self._blobs: list[Blob | None] = []  # None: reserved by an open stream
        self._write(self._header)

    @property
    def bytes_written(self) -> int:
        return self._pos

    def _write(self, data: bytes | memoryview) -> None:
        self._out.write(data)
        self._pos += len(data)
        if self._on_bytes is not None:
            self._on_bytes(len(data))

    def _pad(self) -> None:
        gap = -self._pos % ALIGN
        if gap:
            self._write(bytes(gap))

    def add_blob(self, data: bytes | bytearray | memoryview) -> int:
        """Write one buffer as aligned chunks; return its index. Digests (and compression)
        run in pool threads, a bounded window ahead of the sequential writes."""
        view = memoryview(data).cast("B")
        if self._codec.name == "raw":
            return self._add_raw(view)
        pieces = [view[i:i + self._chunk_size] for i in range(0, max(len(view), 1),
                                                              self._chunk_size)]
        window = 4
        jobs = [_encode_later(self._hash, self._codec, p) for p in pieces[:window]]
        chunks = []
        for i, piece in enumerate(pieces):
            digest, stored = jobs[i].result()
            if i + window < len(pieces):
                jobs.append(_encode_later(self._hash, self._codec, pieces[i + window]))
            jobs[i] = None  # type: ignore[call-overload]  # let the compressed bytes go
            codec = self._codec.name if len(stored) < len(piece) else "raw"
            self._pad()
            chunks.append(Chunk(self._pos, len(piece), len(stored) if codec != "raw"
                                else len(piece), codec, digest))
            self._write(stored if codec != "raw" else piece)
        self._blobs.append(Blob(tuple(chunks)))
        return len(self._blobs) - 1

    def add_chunks(self, pieces: list[bytes]) -> int:
        """Write one blob from chunks given as they are (same boundaries, so same digests:
        for exporting a checkpoint); return its index."""
        chunks = []
        for piece in pieces:
            self._pad()
            chunks.append(Chunk(self._pos, len(piece), len(piece), "raw",
                                self._hash(memoryview(piece))))
            self._write(piece)
        self._blobs.append(Blob(tuple(chunks)))
        return len(self._blobs) - 1

    def _add_raw(self, view: memoryview) -> int:
        pending: list[tuple[int, int, Future[str]]] = []
        for start in range(0, max(len(view), 1), self._chunk_size):
            piece = view[start:start + self._chunk_size]
            self._pad()
            pending.append((self._pos, len(piece), _hash_later(self._hash, piece)))
            self._write(piece)
        chunks = tuple(Chunk(off, n, n, "raw", fut.result()) for off, n, fut in pending)
        self._blobs.append(Blob(chunks))
        return len(self._blobs) - 1

    @property
    def blobs(self) -> tuple[Blob, ...]:
        assert all(b is not None for b in self._blobs), "a blob stream was left open"
        return tuple(b for b in self._blobs if b is not None)

    def length(self, index: int) -> int:
        blob = self._blobs[index]
        return 0 if blob is None else blob.length

    def mark(self) -> int:
        return len(self._blobs)

    def rollback(self, mark: int) -> None:
        """Forget the blobs added since ``mark`` (their bytes stay in the file, unreferenced:
        a failed serialization must not leave entries pointing at half a stream)."""
        del self._blobs[mark:]

    def open_stream(self) -> BlobStream:
        """A blob written as it is produced (a pickle stream), in bounded chunks; other blobs
        may be added while it is open. Its index is reserved now and filled by ``close``."""
        self._blobs.append(None)
        return BlobStream(self, len(self._blobs) - 1)

    def _emit(self, piece: memoryview) -> Chunk:
        digest, stored = _encode(self._hash, self._codec, piece)
        codec = self._codec.name if len(stored) < len(piece) else "raw"
        self._pad()
        chunk = Chunk(self._pos, len(piece), len(stored) if codec != "raw" else len(piece),
                      codec, digest)
        self._write(stored if codec != "raw" else piece)
        return chunk

    def finish(self, manifest: Manifest, key: _trust.Key | None) -> int:
        """Write manifest and trailer; commit. Returns the file size."""
        data = replace(manifest, digest=self.digest).to_json()
        if len(data) > MAX_MANIFEST_BYTES:
            raise FormatError(f"the manifest would be {len(data)} bytes, more than the "
                              f"{MAX_MANIFEST_BYTES} a hibernate file allows")
        offset = self._pos
        self._write(data)
        key_id, mac = (bytes(16), bytes(32)) if key is None else (key.id, key.sign(
            self._header + data))
        body = TRAILER_BODY.pack(offset, len(data), hashlib.sha256(data).digest(), key_id, mac,
                                 FORMAT_VERSION, 1 if key else 0, bytes(12))
        self._write(body + struct.pack("<I", zlib.crc32(body)) + TRAILER_MAGIC)
        self._out.commit()
        return self._pos


class BlobStream:
    """A file-like sink for one blob: buffers up to a chunk, writes full chunks."""

    def __init__(self, writer: FileWriter, index: int) -> None:
        self._writer, self.index = writer, index
        self._buf = bytearray()
        self._chunks: list[Chunk] = []

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Append ``data``: whole chunks are written straight from its memory (a large Arrow
        buffer is never copied), only a partial chunk's bytes are buffered."""
        view = memoryview(data).cast("B")
        size = self._writer._chunk_size
        pos = 0
        if self._buf:
            pos = min(size - len(self._buf), len(view))
            self._buf += view[:pos]
            if len(self._buf) < size:
                return len(view)
            self._chunks.append(self._writer._emit(memoryview(self._buf)))
            self._buf = bytearray()
        while len(view) - pos >= size:
            self._chunks.append(self._writer._emit(view[pos:pos + size]))
            pos += size
        self._buf += view[pos:]
        return len(view)

    def close(self) -> int:
        if self._buf or not self._chunks:
            self._chunks.append(self._writer._emit(memoryview(self._buf)))
            self._buf = bytearray()
        self._writer._blobs[self.index] = Blob(tuple(self._chunks))
        return self.index


def _check_header(src: ReadHandle) -> None:
    if src.size < HEADER.size:
        raise FormatError(f"not a hibernate file: only {src.size} bytes")
    magic, version, _flags = HEADER.unpack(src.read(0, HEADER.size))
    if magic != MAGIC:
        raise FormatError("not a hibernate file (the magic bytes at the start do not match)")
    if version > FORMAT_VERSION:
        raise VersionError(f"this file is format version {version}; this hibernate reads up "
                           f"to version {FORMAT_VERSION}: upgrade hibernate to load it")
    if version < 1:
        raise FormatError(f"bad format version {version} in the header")


def read_manifest(src: ReadHandle, keys: list[_trust.Key] | None) -> Manifest:
    """Read and check header, trailer, manifest and signature. No value is decoded.

    ``keys=None`` skips the signature check (the status is then reported as "unchecked").
    """
    _check_header(src)
    if src.size < HEADER.size + TRAILER_SIZE:
        raise FormatError(f"truncated hibernate file ({src.size} bytes: no room for a trailer)")
    tail = src.read(src.size - TRAILER_SIZE, TRAILER_SIZE)
    body, crc, magic = tail[:-12], tail[-12:-8], tail[-8:]
    if magic != TRAILER_MAGIC:
        raise FormatError("truncated or incomplete hibernate file (no trailer at the end)")
    if struct.unpack("<I", crc)[0] != zlib.crc32(body):
        raise FormatError("the file's trailer is corrupt (checksum mismatch)")
    offset, length, digest, key_id, mac, version, _flags, _ = TRAILER_BODY.unpack(body)
    if version > FORMAT_VERSION:
        raise VersionError(f"this file is format version {version}; this hibernate reads up "
                           f"to version {FORMAT_VERSION}: upgrade hibernate to load it")
    end = src.size - TRAILER_SIZE
    if length > MAX_MANIFEST_BYTES or offset < HEADER.size or offset + length != end:
        raise FormatError("the trailer points at a manifest outside the file")
    data = src.read(offset, length)
    if hashlib.sha256(data).digest() != digest:
        raise IntegrityError("the manifest does not match its digest: the file is damaged")
    status = "unchecked" if keys is None else _trust.verify(
        key_id, mac, src.read(0, HEADER.size) + data, keys)
    manifest = Manifest.from_json(data)
    if manifest.format_version > FORMAT_VERSION:
        raise VersionError(f"manifest format version {manifest.format_version} is newer than "
                           f"{FORMAT_VERSION}")
    if manifest.digest not in DIGESTS:
        raise FormatError(f"unknown chunk digest {manifest.digest!r}")
    _check_chunks(manifest.blobs, offset)
    return replace(manifest, signature=status, manifest_digest=digest.hex(),
                   key_id=key_id.hex() if any(key_id) else "")


def _check_chunks(blobs: Iterable[Blob], data_end: int) -> None:
    spans = []
    for blob in blobs:
        for c in blob.chunks:
            if c.codec not in CODECS:
                raise FormatError(f"unknown chunk codec {c.codec!r}")
            if c.offset < HEADER.size or c.offset + c.stored > data_end:
                raise FormatError("a chunk lies outside the file's data section")
            if (c.codec == "raw" and c.stored != c.raw) or c.raw > MAX_CHUNK:
                raise FormatError("a chunk's recorded lengths are impossible")
            spans.append((c.offset, c.offset + c.stored))
    spans.sort()
    for (_, end_a), (start_b, _) in zip(spans, spans[1:]):
        if start_b < end_a:
            raise FormatError("two chunks overlap in the file")


def _decode(c: Chunk, stored: bytes) -> bytes:
    try:
        return Codec(c.codec).decompress(stored, c.raw)
    except Exception as e:
        raise IntegrityError(f"damaged data: the chunk at byte {c.offset} does not "
                             f"decompress ({type(e).__name__}: {e})") from None


class BlobReader:
    """Reads blobs from a file whose manifest has been checked, verifying every chunk."""

    def __init__(self, src: ReadHandle, manifest: Manifest, mmap: bool = False,
                 on_bytes: Callable[[int], None] | None = None) -> None:
        """``mmap``: large raw blobs are returned as views of a copy-on-write memory map of
        the file, not read; their digests are then not checked (see ``hibernate verify``)."""
        self._src = src
        self._blobs = manifest.blobs
        self._hash = digest_function(manifest.digest)
        self._on_bytes = on_bytes
        self._map: memoryview | None = None
        if mmap:
            mapper = getattr(src, "map", None)
            if mapper is None:
                raise ValueError("mmap=True needs a local file")
            self._map = mapper()

    def _mapped(self, blob: Blob) -> memoryview | None:
        """A view of the blob in the memory map, when it is raw, contiguous and large."""
        if self._map is None or blob.length < MMAP_MIN:
            return None
        chunks = blob.chunks
        if any(c.codec != "raw" for c in chunks) or any(
                a.offset + a.raw != b.offset for a, b in zip(chunks, chunks[1:])):
            return None
        return self._map[chunks[0].offset:chunks[0].offset + blob.length]

    def _fetch_and_hash(self, cp: tuple[Chunk, memoryview]) -> str:
        self._fetch(cp)
        return self._hash(cp[1])

    def _fetch(self, cp: tuple[Chunk, memoryview]) -> None:
        c, piece = cp
        if c.codec == "raw":
            self._src.readinto(c.offset, piece)
        else:
            piece[:] = _decode(c, self._src.read(c.offset, c.stored))

    def read(self, index: int) -> bytearray:
        """The raw bytes of one blob; IntegrityError if any chunk's digest does not match.
        (A mapped blob is a memoryview of the map, unchecked.)"""
        blob = self._blobs[index]
        mapped = self._mapped(blob)
        if mapped is not None:
            return mapped  # type: ignore[return-value]
        out = bytearray(blob.length)
        view = memoryview(out)
        pieces = []
        pos = 0
        for c in blob.chunks:
            pieces.append((c, view[pos:pos + c.raw]))
            pos += c.raw
        compressed = any(c.codec != "raw" for c, _ in pieces)
        if len(pieces) > 1 and (compressed or self._src.concurrent):
            # remote ranges and decompression run in parallel threads, each hashing its own
            digests = list(_fetch_pool().map(self._fetch_and_hash, pieces))
        else:  # local: read in order, hash a chunk in a pool thread while the next is read
            futures = []
            for cp in pieces:
                self._fetch(cp)
                futures.append(_hash_later(self._hash, cp[1]))
            digests = [f.result() for f in futures]
        for (c, _), digest in zip(pieces, digests):
            if digest != c.digest:
                raise IntegrityError(f"damaged data: the chunk at byte {c.offset} does not match "
                                     "its digest")
        if self._on_bytes is not None:
            self._on_bytes(len(out))
        return out
