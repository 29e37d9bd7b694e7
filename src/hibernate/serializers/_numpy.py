"""The numpy serializer: an ndarray as its raw bytes plus dtype, shape and order.

Stored natively (no pickle), so restoring it runs no code from the file: an untrusted file's
arrays load with ``data_only=True``. The bytes are written from the array's own memory when
it is contiguous (C or Fortran order); a non-contiguous array is copied once.

Handles exact ``numpy.ndarray`` instances of plain dtypes (numbers, bools, datetimes,
fixed-width strings); subclasses (masked arrays, matrices), structured and object arrays go to
the pickle serializer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._base import Buffer, Dumped, Serializer

__all__ = ["NumpySerializer"]


# Kinds whose bytes are plain data: bool, ints, floats, complex, datetimes, strings, void.
_PLAIN_KINDS = frozenset("biufcmMUSV")


def _plain(dtype: np.dtype[Any]) -> bool:
    return dtype.kind in _PLAIN_KINDS and dtype.fields is None and dtype.subdtype is None


def _dtype_from_json(value: Any) -> np.dtype[Any]:
    """Parse a dtype string from a manifest; refuse anything but plain data (an object
    dtype read from a file would turn its bytes into pointers)."""
    if not isinstance(value, str) or len(value) > 32:
        raise ValueError("bad dtype description")
    dtype = np.dtype(value)
    if not _plain(dtype):
        raise ValueError(f"dtype {value!r} is not plain data")
    return dtype


class NumpySerializer(Serializer):
    name = "numpy"
    version = 1

    def handles(self, obj: object) -> bool:
        return type(obj) is np.ndarray and _plain(obj.dtype)

    def dump(self, obj: object) -> Dumped:
        assert isinstance(obj, np.ndarray)
        order = "F" if obj.flags.f_contiguous and not obj.flags.c_contiguous else "C"
        data = obj if obj.flags.c_contiguous or order == "F" else np.ascontiguousarray(obj)
        flat: Any = data.reshape(-1, order="A").view(np.uint8)
        buf = memoryview(flat) if data.size else b""
        meta = {"dtype": obj.dtype.str, "shape": list(obj.shape), "order": order}
        return Dumped(meta, [buf])

    def raw_buffers(self, meta: Mapping[str, Any], count: int) -> set[int]:
        return set(range(count))  # the array's bytes, as they are

    def load(self, meta: dict[str, Any], buffers: Sequence[Buffer]) -> object:
        dtype = _dtype_from_json(meta["dtype"])
        shape = tuple(int(n) for n in meta["shape"])
        order = meta.get("order", "C")
        if order not in ("C", "F") or len(buffers) != 1:
            raise ValueError("bad numpy array description")
        count = int(np.prod(shape, dtype=np.int64))
        if len(memoryview(buffers[0]).cast("B")) != count * dtype.itemsize:
            raise ValueError("array bytes do not match its dtype and shape")
        flat = np.frombuffer(buffers[0], dtype=dtype, count=count) if count else np.empty(
            0, dtype)
        return flat.reshape(shape, order=order)
