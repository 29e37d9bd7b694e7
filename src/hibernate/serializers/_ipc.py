"""Reading an Arrow IPC stream from a file, the one way every serializer does it (arrow,
polars, and pandas' Arrow-backed columns).

- **Headers checked before decoding.** Every message's flatbuffer header is read first:
  only schemas, dictionary batches and record batches; no compressed bodies (hibernate
  never writes them; a 17 KB body decompressed to 512 MB); row counts and null counts that
  the data can hold (a negative null count with a huge length crashed pyarrow), at most
  ``max_expansion()`` times the stream's size in rows; buffers inside the body.
- **Full validation** of what was read.
- **Plain types only from untrusted files** (``data_only``, or an untrusted ``open``):
  primitive, string and binary, decimal, temporal, list, struct, map, dictionary and null
  types; no extension type (a field tagged with another library's extension name reached
  polars and aborted the process). A trusted file's extension types load as pyarrow
  resolves them (types registered in the loading process).
"""

from __future__ import annotations

import contextlib
import re
import struct
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from .._limits import max_expansion
from ._base import Buffer

__all__ = ["read_ipc", "untrusted", "zone_name"]

_untrusted: ContextVar[bool] = ContextVar("hibernate_untrusted", default=False)
_SCHEMA, _DICTIONARY_BATCH, _RECORD_BATCH = 1, 2, 3  # MessageHeader union tags (Message.fbs)
_EXTENSION_KEY = b"ARROW:extension:name"


@contextlib.contextmanager
def untrusted(flag: bool = True) -> Iterator[None]:
    """While active, Arrow data is read as from an untrusted file (plain types only)."""
    token = _untrusted.set(flag)
    try:
        yield
    finally:
        _untrusted.reset(token)


def _u32(b: bytes, p: int) -> int:
    return int(struct.unpack_from("<I", b, p)[0])


def _field(b: bytes, table: int, index: int) -> int | None:
    """Where field ``index`` of the flatbuffer table at ``table`` is, or None if absent."""
    vtable = table - int(struct.unpack_from("<i", b, table)[0])
    size = int(struct.unpack_from("<H", b, vtable)[0])
    entry = 4 + 2 * index
    if entry + 2 > size:
        return None
    offset = int(struct.unpack_from("<H", b, vtable + entry)[0])
    return table + offset if offset else None


def _i64(b: bytes, p: int) -> int:
    return int(struct.unpack_from("<q", b, p)[0])


def _vector(b: bytes, at: int | None) -> tuple[int, int]:
    """(first element's position, count) of the flatbuffer vector a field points to."""
    if at is None:
        return 0, 0
    start = at + _u32(b, at)
    return start + 4, _u32(b, start)


def _batch_problem(b: bytes, batch: int, body: int, rows_limit: int) -> str | None:
    """What is wrong with a RecordBatch header, checked before pyarrow decodes it: body
    compression (hibernate never writes it), lengths and null counts that the body cannot
    hold (a negative null count with a huge length crashed pyarrow), buffers outside the
    body."""
    if _field(b, batch, 3) is not None:  # RecordBatch.compression
        return ("the Arrow data has compressed bodies, which hibernate never writes: refused "
                "before decompressing")
    length_at = _field(b, batch, 0)
    if length_at is not None and not 0 <= _i64(b, length_at) <= rows_limit:
        return "an Arrow batch declares more rows than its data can hold"
    start, count = _vector(b, _field(b, batch, 1))  # FieldNode {length, null_count}
    for i in range(count):
        length, nulls = _i64(b, start + 16 * i), _i64(b, start + 16 * i + 8)
        if not 0 <= nulls <= length <= rows_limit:
            return "an Arrow column declares impossible lengths or null counts"
    start, count = _vector(b, _field(b, batch, 2))  # Buffer {offset, length}
    for i in range(count):
        offset, length = _i64(b, start + 16 * i), _i64(b, start + 16 * i + 8)
        if offset < 0 or length < 0 or offset + length > body:
            return "an Arrow buffer lies outside its message body"
    return None


def _message_problem(metadata: bytes, rows_limit: int) -> str | None:
    """What is wrong with one IPC message's header (None when nothing is): only schemas,
    dictionary batches and record batches may appear, each checked as above."""
    root = _u32(metadata, 0)
    kind_at, header_at = _field(metadata, root, 1), _field(metadata, root, 2)
    body_at = _field(metadata, root, 3)
    body = 0 if body_at is None else _i64(metadata, body_at)
    kind = 0 if kind_at is None else metadata[kind_at]
    if kind == _SCHEMA:
        return None
    if kind not in (_DICTIONARY_BATCH, _RECORD_BATCH) or header_at is None or body < 0:
        return f"an Arrow message of an unexpected kind ({kind})"
    header = header_at + _u32(metadata, header_at)
    if kind == _DICTIONARY_BATCH:
        data_at = _field(metadata, header, 1)  # DictionaryBatch.data
        if data_at is None:
            return "an Arrow dictionary batch without data"
        header = data_at + _u32(metadata, data_at)
    return _batch_problem(metadata, header, body, rows_limit)


def _refuse_bad_messages(pa: Any, buf: Any) -> None:
    """Every message's header checked before anything is decoded; ValueError naming the
    first problem. Rows are bounded by ``max_expansion()`` times the stream's size."""
    rows_limit = max_expansion() * max(buf.size, 4096)
    reader = pa.ipc.MessageReader.open_stream(buf)
    while True:
        try:
            message = reader.read_next_message()
        except StopIteration:
            return
        try:
            problem = _message_problem(message.metadata.to_pybytes(), rows_limit)
        except (struct.error, IndexError):
            raise ValueError("damaged Arrow data (a message header does not parse)") from None
        if problem:
            raise ValueError(problem)


def _plain(pa: Any, t: Any) -> bool:
    types = pa.types
    if isinstance(t, pa.ExtensionType):
        return False
    if types.is_dictionary(t):
        return _plain(pa, t.index_type) and _plain(pa, t.value_type)
    if (types.is_list(t) or types.is_large_list(t) or types.is_fixed_size_list(t)
            or types.is_map(t) or types.is_struct(t)):
        return all(_plain_field(pa, t.field(i)) for i in range(t.num_fields))
    if types.is_timestamp(t) and t.tz is not None:
        try:
            zone_name(t.tz)
        except ValueError:
            return False
    return bool(types.is_null(t) or types.is_boolean(t) or types.is_integer(t)
                or types.is_floating(t) or types.is_decimal(t) or types.is_string(t)
                or types.is_large_string(t) or types.is_binary(t) or types.is_large_binary(t)
                or types.is_fixed_size_binary(t) or types.is_temporal(t))


def _zones_are_names(pa: Any, t: Any) -> bool:
    """Every time zone in type ``t`` (nested ones too) is a name, never a path."""
    types = pa.types
    if isinstance(t, pa.ExtensionType):
        return _zones_are_names(pa, t.storage_type)
    if types.is_dictionary(t):
        return _zones_are_names(pa, t.value_type)
    if types.is_nested(t):
        return all(_zones_are_names(pa, t.field(i).type) for i in range(t.num_fields))
    if types.is_timestamp(t) and t.tz is not None:
        try:
            zone_name(t.tz)
        except ValueError:
            return False
    return True


def _plain_field(pa: Any, f: Any) -> bool:
    return _EXTENSION_KEY not in (f.metadata or {}) and _plain(pa, f.type)


def read_ipc(buffer: Buffer) -> Any:
    """The table in an IPC stream: compression refused first, then read (zero-copy over
    ``buffer``) and fully validated; from an untrusted file, plain types only. Raises
    ValueError for anything wrong."""
    import pyarrow as pa  # type: ignore[import-untyped]

    buf = pa.py_buffer(buffer)
    try:
        _refuse_bad_messages(pa, buf)
        table = pa.ipc.open_stream(buf).read_all()
        table.validate(full=True)
    except (pa.ArrowException, OSError) as e:
        raise ValueError(f"damaged Arrow data ({e})") from None
    zones = [f.name for f in table.schema if not _zones_are_names(pa, f.type)]
    if zones:  # trusted or not: a time zone library would open it as a file
        raise ValueError(f"Arrow columns {zones[:5]} have a time zone that is not a name")
    if _untrusted.get():
        bad = [f.name for f in table.schema if not _plain_field(pa, f)]
        if bad:
            raise ValueError(f"Arrow columns {bad[:5]} are of extension or unusual types, "
                             "which an untrusted file may not hold (load it trusted)")
    return table


_ZONE = re.compile(r"(?:[A-Za-z][A-Za-z0-9_+:\-]*(?:/[A-Za-z0-9_+:\-]+)*|[+-]\d\d:\d\d)\Z")


def zone_name(tz: object) -> str:
    """A time zone name as saved: an IANA-style name or a fixed offset, nothing that a time
    zone library would read as a path (``dateutil//etc/passwd``)."""
    if not isinstance(tz, str) or len(tz) > 64 or not _ZONE.match(tz) or ".." in tz:
        raise ValueError(f"not a time zone name: {str(tz)[:64]!r}")
    return tz
