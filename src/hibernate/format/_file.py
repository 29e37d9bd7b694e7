"""The ``.hib`` file: a ChunkSink and a ChunkSource over one object, and its header,
manifest and trailer. Format v2 is written; v1 files are read too.

Layout (all integers little-endian; docs/format.md has the whole of it)::

    header   32 B   magic b"\\x89HIB\\r\\n\\x1a\\n", u32 format version (2), u32 feature bits,
                    16 B ASCII: the first hibernate version that reads this file
                    (v1: 16 B, magic, u32 version 1, u32 flags 0)
    chunks          every blob's chunks, each starting on a 64-byte boundary; padding is zeros
    manifest        UTF-8 JSON (see _manifest.py), at most MAX_MANIFEST_BYTES
    trailer 128 B   u64 manifest offset, u64 manifest length, 32 B SHA-256 of the manifest
                    bytes, 16 B key id, 32 B HMAC, u32 format version, u32 flags (bit 0:
                    signed), 12 B zero, u32 CRC-32 of the preceding 116 bytes,
                    magic b"\\x89HIBEND\\n"

v2's HMAC covers the manifest's canonical form (``canonical_bytes``: offsets left out), so a
checkpoint exported to a file keeps the signature it had in its store. A reader meets the
header first: a newer version, or a feature bit it does not know, raises ``VersionError``
naming the hibernate that reads the file, before anything else is parsed.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

from .._limits import max_expansion
from ..errors import FormatError, IntegrityError, VersionError
from ..storage import ReadHandle, WriteHandle
from ..trust import _keys
from ._kinds import FEATURES, Feature
from ._manifest import (
    FORMAT_VERSION,
    MAX_MANIFEST_BYTES,
    Blob,
    Chunk,
    Manifest,
    canonical_bytes,
    known_feature_bits,
    parse_json,
)
from ._reader import check_codecs

__all__ = ["FileSink", "FileSource", "check_expansion", "features_for", "header_bytes",
           "read_file_manifest", "seal_of", "signed_message"]

MAGIC = b"\x89HIB\r\n\x1a\n"
TRAILER_MAGIC = b"\x89HIBEND\n"
HEADER_V1 = struct.Struct("<8sII")
HEADER_V2 = struct.Struct("<8sII16s")
TRAILER_BODY = struct.Struct("<QQ32s16s32sII12s")
TRAILER_SIZE = TRAILER_BODY.size + 4 + len(TRAILER_MAGIC)
ALIGN = 64
SIGNED_PREFIX = b"hibernate manifest v2\0"
assert TRAILER_SIZE == 128


def signed_message(canonical: bytes, header: bytes) -> bytes:
    """What a v2 signature's HMAC covers: the header (which follows from the manifest's
    features, so a checkpoint and its export have the same one) and the canonical manifest."""
    return SIGNED_PREFIX + header + canonical


def seal_of(manifest: Manifest, d: dict[str, Any] | None = None) -> tuple[bytes, bytes]:
    """(key id, MAC) of a new manifest under the user's key (format v2). ``d``: its
    ``to_dict()``, where the caller has it already."""
    return _keys.seal(signed_message(canonical_bytes(manifest.to_dict() if d is None else d),
                                     header_bytes(manifest.features)))


def feature_bits(features: Iterable[str]) -> int:
    return sum(FEATURES[Feature(f)][0] for f in set(features))


def min_reader(bits: int) -> str:
    """The first hibernate version that reads a file with these feature bits."""
    versions = [v for bit, v in FEATURES.values() if bits & bit] or ["0.2.0"]
    return max(versions, key=lambda v: tuple(int(p) for p in v.split(".")))


def features_for(digest: str, codec: str) -> tuple[str, ...]:
    """The features a writer declares up front (the header is written first): its digest,
    its codec, and placeholders (any group may hold one)."""
    found = [Feature.PLACEHOLDERS]
    if digest == "blake3":
        found.append(Feature.BLAKE3)
    if codec == "zstd":
        found.append(Feature.ZSTD)
    return tuple(sorted(str(f) for f in found))


def header_bytes(features: Iterable[str]) -> bytes:
    bits = feature_bits(features)
    return HEADER_V2.pack(MAGIC, FORMAT_VERSION, bits, min_reader(bits).encode())


class FileSink:
    """Chunks written front to back into one WriteHandle, each at a 64-byte boundary, after
    the header (whose feature bits are what the writer may use: see ``features_for``)."""

    def __init__(self, out: WriteHandle, header: bytes,
                 on_bytes: Callable[[int], None] | None = None) -> None:
        self._out = out
        self._on_bytes = on_bytes
        self._pos = 0
        self._write(header)

    @property
    def bytes_written(self) -> int:
        return self._pos

    def _write(self, data: bytes | memoryview) -> None:
        self._out.write(data)
        self._pos += len(data)

    def put(self, digest: str, raw: int, stored: bytes | memoryview, codec: str) -> Chunk:
        gap = -self._pos % ALIGN
        if gap:
            self._write(bytes(gap))
        chunk = Chunk(self._pos, raw, len(stored), codec, digest)
        self._write(stored)
        return chunk

    def known(self, digest: str, raw: int) -> Chunk | None:
        return None  # a file holds each chunk where it was written: no reuse

    def mark(self) -> int:
        return self._pos

    def rewind(self, mark: int) -> None:
        """Take the bytes since ``mark`` back where the handle can truncate (local files);
        elsewhere they stay in the file, unreferenced (see README, limits)."""
        if getattr(self._out, "can_truncate", False) and mark < self._pos:
            self._out.truncate(mark)  # type: ignore[attr-defined]
            self._pos = mark

    def finish(self, manifest: Manifest, seal: tuple[bytes, bytes] | None) -> int:
        """Write the manifest and trailer, then commit. ``seal``: (key id, MAC) of the
        manifest's canonical form, or None to leave it unsigned. Returns the file size."""
        data = manifest.to_json()
        if len(data) > MAX_MANIFEST_BYTES:
            raise FormatError(f"the manifest would be {len(data)} bytes, more than the "
                              f"{MAX_MANIFEST_BYTES} a hibernate file allows")
        offset = self._pos
        self._write(data)
        key_id, mac = seal or (bytes(16), bytes(32))
        body = TRAILER_BODY.pack(offset, len(data), hashlib.sha256(data).digest(), key_id, mac,
                                 FORMAT_VERSION, 1 if seal else 0, bytes(12))
        self._write(body + struct.pack("<I", zlib.crc32(body)) + TRAILER_MAGIC)
        self._out.commit()
        return self._pos


class FileSource:
    """Chunks of one pinned file version, by ranged reads at their offsets."""

    def __init__(self, src: ReadHandle) -> None:
        self._src = src
        self.concurrent = src.concurrent
        self.can_map = hasattr(src, "map")

    def proven(self) -> int:
        return self._src.size

    def check_expansion(self, blobs: Sequence[Blob]) -> None:
        check_expansion(blobs, self._src.size)

    def read_chunk(self, chunk: Chunk) -> bytes:
        return self._src.read(chunk.offset, chunk.stored)

    def read_raw_into(self, chunk: Chunk, out: memoryview) -> None:
        self._src.readinto(chunk.offset, out)

    def map_blob(self, blob: Blob) -> memoryview | None:
        mapper = getattr(self._src, "map", None)
        chunks = blob.chunks
        if mapper is None or not chunks or any(c.codec != "raw" for c in chunks) or any(
                a.offset + a.raw != b.offset for a, b in zip(chunks, chunks[1:])):
            return None
        view: memoryview = mapper()
        return view[chunks[0].offset:chunks[0].offset + blob.length]


# ---- reading the end of a file ----------------------------------------------------------

def _version_error(version: int, bits: int = 0, reader: str = "") -> VersionError:
    from .._version import VERSION

    if bits:
        return VersionError(f"this file needs format features this hibernate ({VERSION}) "
                            f"does not know (bits {bits:#x}): hibernate {reader or 'newer'} "
                            "or newer reads it")
    return VersionError(f"this file is format version {version}; this hibernate ({VERSION}) "
                        f"reads up to version {FORMAT_VERSION}: hibernate "
                        f"{reader or 'newer'} or newer reads it")


def read_header(src: ReadHandle) -> tuple[int, int, int]:
    """(format version, feature bits, header size); VersionError for what we cannot read."""
    if src.size < HEADER_V1.size:
        raise FormatError(f"not a hibernate file: only {src.size} bytes")
    magic, version, bits = HEADER_V1.unpack(src.read(0, HEADER_V1.size))
    if magic != MAGIC:
        raise FormatError("not a hibernate file (the magic bytes at the start do not match)")
    if version < 1:
        raise FormatError(f"bad format version {version} in the header")
    if version == 1:
        return 1, 0, HEADER_V1.size
    if src.size < HEADER_V2.size:
        raise FormatError(f"truncated hibernate file ({src.size} bytes)")
    reader = src.read(HEADER_V1.size, 16).rstrip(b"\0").decode("ascii", "replace")
    if version > FORMAT_VERSION:
        raise _version_error(version, reader=reader)
    if bits & ~known_feature_bits():
        raise _version_error(version, bits & ~known_feature_bits(), reader)
    return version, bits, HEADER_V2.size


def read_file_manifest(src: ReadHandle, keys: list[_keys.Key] | None) -> Manifest:
    """Read and check header, trailer, manifest and signature. No value is decoded.

    ``keys=None`` skips the signature check (the status is then reported as "unchecked").
    """
    version, bits, header_size = read_header(src)
    if src.size < header_size + TRAILER_SIZE:
        raise FormatError(f"truncated hibernate file ({src.size} bytes: no room for a trailer)")
    tail = src.read(src.size - TRAILER_SIZE, TRAILER_SIZE)
    body, crc, magic = tail[:-12], tail[-12:-8], tail[-8:]
    if magic != TRAILER_MAGIC:
        raise FormatError("truncated or incomplete hibernate file (no trailer at the end)")
    if struct.unpack("<I", crc)[0] != zlib.crc32(body):
        raise FormatError("the file's trailer is corrupt (checksum mismatch)")
    offset, length, digest, key_id, mac, trailer_version, _flags, _ = TRAILER_BODY.unpack(body)
    if trailer_version > FORMAT_VERSION:
        raise _version_error(trailer_version)
    if trailer_version != version:
        raise FormatError(f"the header says format version {version} and the trailer "
                          f"{trailer_version}")
    end = src.size - TRAILER_SIZE
    if length > MAX_MANIFEST_BYTES or offset < header_size or offset + length != end:
        raise FormatError("the trailer points at a manifest outside the file")
    data = src.read(offset, length)
    if hashlib.sha256(data).digest() != digest:
        raise IntegrityError("the manifest does not match its digest: the file is damaged")
    d = parse_json(data)
    header = src.read(0, header_size)
    signed_v1 = header + data if version == 1 else b""
    del data  # inspect holds a small multiple of the manifest's size: not one copy more
    manifest = Manifest.from_dict(d)  # every field present and typed
    check_manifest(manifest, version, bits)
    _check_spans(manifest.blobs, header_size, offset)
    if version == 1:
        status = _keys.Signature.UNCHECKED if keys is None else _keys.verify(
            key_id, mac, signed_v1, keys, legacy=True)
        manifest_digest = digest.hex()
    else:
        canonical = canonical_bytes(d, consume=True)
        del d
        status = _keys.Signature.UNCHECKED if keys is None else _keys.verify(
            key_id, mac, signed_message(canonical, header), keys)
        manifest_digest = hashlib.sha256(canonical).hexdigest()
    if status != _keys.Signature.VALID:  # (the user's own files: see BlobReader's ``own``)
        check_expansion(manifest.blobs, src.size)
    return replace(manifest, signature=status, manifest_digest=manifest_digest,
                   key_id=key_id.hex() if any(key_id) else "", mac=mac.hex() if any(mac) else "")


def check_manifest(manifest: Manifest, version: int, bits: int | None) -> None:
    """The manifest agrees with its container: version, digest, feature bits, codecs."""
    from ._digests import DIGESTS

    if manifest.format_version > FORMAT_VERSION:
        raise _version_error(manifest.format_version)
    if manifest.format_version != version:
        raise FormatError(f"manifest format version {manifest.format_version} does not match "
                          f"its container's ({version})")
    if manifest.digest not in DIGESTS:
        raise FormatError(f"unknown chunk digest {manifest.digest!r}")
    if version >= 2:
        try:
            declared = feature_bits(manifest.features)
        except ValueError:
            raise FormatError(f"manifest names unknown features {manifest.features}") from None
        if bits is not None and declared != bits:
            raise FormatError("the header's feature bits and the manifest's features differ")
        if (manifest.digest == "blake3") != (Feature.BLAKE3 in manifest.features):
            raise FormatError("the manifest's digest and its features disagree")
        if Feature.ZSTD not in manifest.features and any(
                c.codec == "zstd" for b in manifest.blobs for c in b.chunks):
            raise FormatError("a chunk is zstd-compressed but the file does not declare zstd")
    check_codecs(manifest.blobs)


def check_expansion(blobs: Iterable[Blob], size: int, what: str = "the file") -> None:
    """FormatError, before anything is allocated, when the blobs declare more raw bytes
    than ``max_expansion()`` times ``size``: a file's size, or what a checkpoint counts as
    its size (see ``StoreSource.check_expansion``)."""
    total = sum(c.raw for b in blobs for c in b.chunks)
    limit = max_expansion() * max(size, 1)
    if total > limit:
        raise FormatError(f"{what} declares {total} bytes of data in {size} bytes, more than "
                          f"{max_expansion()} times its size: refused before reading (set "
                          "HIBERNATE_MAX_EXPANSION to read a legitimately compressible file)")


def _check_spans(blobs: Iterable[Blob], data_start: int, data_end: int) -> None:
    spans = []
    for blob in blobs:
        for c in blob.chunks:
            if c.offset < data_start or c.offset + c.stored > data_end:
                raise FormatError("a chunk lies outside the file's data section")
            if c.codec == "raw" and c.stored != c.raw:
                raise FormatError("a chunk's recorded lengths are impossible")
            spans.append((c.offset, c.offset + c.stored))
    spans.sort()
    for (_, end_a), (start_b, _) in zip(spans, spans[1:]):
        if start_b < end_a:
            raise FormatError("two chunks overlap in the file")
