"""Hand-building hostile files from docs/format.md: take a real file apart, change its
manifest, put it back together (unsigned, or signed with the test key)."""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from typing import Any

TRAILER_SIZE = 128
TRAILER_MAGIC = b"\x89HIBEND\n"
HEADER_SIZE = 32


def manifest_span(data: bytes) -> tuple[int, int]:
    offset, length = struct.unpack_from("<QQ", data, len(data) - TRAILER_SIZE)
    return offset, length


def manifest_of(data: bytes) -> dict[str, Any]:
    offset, length = manifest_span(data)
    return json.loads(data[offset:offset + length])  # type: ignore[no-any-return]


def rewrap(data: bytes, manifest: dict[str, Any] | bytes, *, sign: bool = False,
           body: bytes | None = None) -> bytes:
    """The file's header (and its data section, or ``body``) with another manifest and a
    consistent trailer; signed with the test key when ``sign``."""
    from hibernate.format import canonical_bytes, signed_message
    from hibernate.trust import user_key

    raw = manifest if isinstance(manifest, bytes) else json.dumps(manifest).encode()
    offset, _ = manifest_span(data)
    data_section = data[:offset] if body is None else data[:HEADER_SIZE] + body
    offset = len(data_section)
    key_id, mac = bytes(16), bytes(32)
    if sign:
        d = json.loads(raw)
        key = user_key()
        key_id = key.id
        mac = key.sign(signed_message(canonical_bytes(d), data[:HEADER_SIZE]))
    trailer = struct.pack("<QQ32s16s32sII12s", offset, len(raw), hashlib.sha256(raw).digest(),
                          key_id, mac, 2, 1 if sign else 0, bytes(12))
    return (data_section + raw + trailer + struct.pack("<I", zlib.crc32(trailer))
            + TRAILER_MAGIC)
