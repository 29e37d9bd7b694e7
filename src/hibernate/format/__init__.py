"""The format layer: manifests, the one chunk writer and reader, and the ``.hib`` file.

Both kinds of container use the same pieces: a ``.hib`` file is a ``FileSink`` /
``FileSource`` (chunks at offsets in one object), a checkpoint store is a content-addressed
sink and source (see ``checkpoints/``). Nothing here knows what a session is.
"""

from __future__ import annotations

from ._codecs import CODECS, Codec, resolve_compression
from ._digests import DIGESTS, default_digest, digest_function
from ._file import (
    HEADER_V1,
    MAGIC,
    FileSink,
    FileSource,
    check_expansion,
    features_for,
    header_bytes,
    read_file_manifest,
    seal_of,
    signed_message,
)
from ._kinds import FEATURES, Feature, How, Kind, SkipCode
from ._manifest import (
    FORMAT_VERSION,
    MAX_MANIFEST_BYTES,
    Blob,
    Chunk,
    Entry,
    Group,
    Manifest,
    SerializerRef,
    Skip,
    canonical_bytes,
    parse_json,
)
from ._prefetch import Prefetcher
from ._reader import (
    MAX_CHUNK,
    MMAP_MIN,
    BlobReader,
    ChunkSource,
    check_codecs,
    is_own,
    verify_chunk,
)
from ._writer import CHUNK_SIZE, RAW, BlobStream, ChunkSink, ChunkWriter, FastDigests

__all__ = [
    "Blob", "BlobReader", "BlobStream", "CHUNK_SIZE", "CODECS", "Chunk", "ChunkSink",
    "ChunkSource", "ChunkWriter", "Codec", "DIGESTS", "Entry", "FEATURES", "FORMAT_VERSION",
    "FastDigests", "Feature", "FileSink", "FileSource", "Group", "HEADER_V1", "How", "Kind",
    "MAGIC", "MAX_CHUNK", "MAX_MANIFEST_BYTES", "MMAP_MIN", "Manifest", "Prefetcher", "RAW",
    "SerializerRef", "Skip", "SkipCode", "canonical_bytes", "check_codecs",
    "check_expansion", "default_digest",
    "digest_function", "features_for", "header_bytes", "is_own", "parse_json", "read_file_manifest",
    "resolve_compression", "seal_of", "signed_message", "verify_chunk",
]
