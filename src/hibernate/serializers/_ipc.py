"""Reading an Arrow IPC stream from a file, the one way every serializer does it (arrow,
polars, and pandas' Arrow-backed columns).

- **No compressed bodies.** hibernate never writes them; inside a file they are a way past
  the chunk bound (a 17 KB body that decompresses to 512 MB), so every record-batch and
  dictionary-batch message is looked at *before* it is decoded (its flatbuffer header's
  ``compression`` field) and a compressed one is refused.
- **Full validation** of what was read.
- **Plain types only from untrusted files** (``data_only``, or an untrusted ``open``):
  primitive, string and binary, decimal, temporal, list, struct, map, dictionary and null
  types; no extension type (a field tagged with another library's extension name reached
  polars and aborted the process). A trusted file's extension types load as pyarrow
  resolves them (types registered in the loading process).
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from ._base import Buffer

__all__ = ["read_ipc", "untrusted"]

_untrusted: ContextVar[bool] = ContextVar("hibernate_untrusted", default=False)
_RECORD_BATCH, _DICTIONARY_BATCH = 3, 4  # MessageHeader union tags (Message.fbs)
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


def _batch_compressed(b: bytes, batch: int) -> bool:
    return _field(b, batch, 3) is not None  # RecordBatch.compression


def _compressed(metadata: bytes) -> bool:
    """Whether a Message's header is a (dictionary) batch with body compression."""
    root = _u32(metadata, 0)
    kind_at, header_at = _field(metadata, root, 1), _field(metadata, root, 2)
    if kind_at is None or header_at is None:
        return False
    kind = metadata[kind_at]
    header = header_at + _u32(metadata, header_at)
    if kind == _RECORD_BATCH:
        return _batch_compressed(metadata, header)
    if kind == _DICTIONARY_BATCH:
        data_at = _field(metadata, header, 1)  # DictionaryBatch.data
        return data_at is not None and _batch_compressed(metadata,
                                                         data_at + _u32(metadata, data_at))
    return False


def _refuse_compression(pa: Any, buf: Any) -> None:
    reader = pa.ipc.MessageReader.open_stream(buf)
    while True:
        try:
            message = reader.read_next_message()
        except StopIteration:
            return
        try:
            squeezed = _compressed(message.metadata.to_pybytes())
        except (struct.error, IndexError):
            raise ValueError("damaged Arrow data (a message header does not parse)") from None
        if squeezed:
            raise ValueError("the Arrow data has compressed bodies, which hibernate never "
                             "writes: refused before decompressing")


def _plain(pa: Any, t: Any) -> bool:
    types = pa.types
    if isinstance(t, pa.ExtensionType):
        return False
    if types.is_dictionary(t):
        return _plain(pa, t.index_type) and _plain(pa, t.value_type)
    if (types.is_list(t) or types.is_large_list(t) or types.is_fixed_size_list(t)
            or types.is_map(t) or types.is_struct(t)):
        return all(_plain_field(pa, t.field(i)) for i in range(t.num_fields))
    return bool(types.is_null(t) or types.is_boolean(t) or types.is_integer(t)
                or types.is_floating(t) or types.is_decimal(t) or types.is_string(t)
                or types.is_large_string(t) or types.is_binary(t) or types.is_large_binary(t)
                or types.is_fixed_size_binary(t) or types.is_temporal(t))


def _plain_field(pa: Any, f: Any) -> bool:
    return _EXTENSION_KEY not in (f.metadata or {}) and _plain(pa, f.type)


def read_ipc(buffer: Buffer) -> Any:
    """The table in an IPC stream: compression refused first, then read (zero-copy over
    ``buffer``) and fully validated; from an untrusted file, plain types only. Raises
    ValueError for anything wrong."""
    import pyarrow as pa  # type: ignore[import-untyped]

    buf = pa.py_buffer(buffer)
    try:
        _refuse_compression(pa, buf)
        table = pa.ipc.open_stream(buf).read_all()
        table.validate(full=True)
    except (pa.ArrowException, OSError) as e:
        raise ValueError(f"damaged Arrow data ({e})") from None
    if _untrusted.get():
        bad = [f.name for f in table.schema if not _plain_field(pa, f)]
        if bad:
            raise ValueError(f"Arrow columns {bad[:5]} are of extension or unusual types, "
                             "which an untrusted file may not hold (load it trusted)")
    return table
