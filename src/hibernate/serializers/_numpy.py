"""The numpy serializer: an ndarray as its raw bytes plus dtype, shape and order.

Stored natively (no pickle), so restoring it runs no code from the file: an untrusted file's
arrays load with ``data_only=True``. The bytes are written from the array's own memory when
it is contiguous (C or Fortran order); a non-contiguous array is copied once.

Handles exact ``numpy.ndarray`` instances of plain dtypes (numbers, bools, datetimes,
fixed-width strings); subclasses (masked arrays, matrices), structured and object arrays go to
the pickle serializer.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._base import Buffer, Dumped, Serializer

__all__ = ["NumpySerializer", "portable_array", "portable_random", "portable_random_reduce",
           "portable_reduce"]


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


def portable_reduce(arr: np.ndarray[Any, Any]) -> tuple[Any, ...] | None:
    """An array inside a pickled value, in a form no numpy version's internals appear in:
    ``portable_array(dtype string, shape, order, buffer)``, the buffer out of band when it is
    large (the pickler decides), written from the array's own memory when contiguous. None
    for what is not plain data (object or structured dtypes keep numpy's own form)."""
    if not _plain(arr.dtype):
        return None
    order = "F" if arr.flags.f_contiguous and not arr.flags.c_contiguous else "C"
    if not arr.dtype.itemsize:
        return (portable_array, (arr.dtype.str, tuple(int(n) for n in arr.shape), "C", b""))
    if not (arr.flags.c_contiguous or order == "F"):
        arr = np.ascontiguousarray(arr)  # a strided view: copied once
    # its memory as bytes (datetimes have no buffer format of their own); a writable buffer,
    # so that the array it becomes on load is writable too
    flat = arr.reshape(-1, order="A").view(np.uint8)
    buffer: Any = pickle.PickleBuffer(flat)  # type: ignore[arg-type]
    return (portable_array, (arr.dtype.str, tuple(int(n) for n in arr.shape), order, buffer))


def portable_array(dtype: str, shape: tuple[int, ...], order: str, buffer: Any
                   ) -> np.ndarray[Any, Any]:
    """The array ``portable_reduce`` wrote, checked as data from a file: a plain dtype, a
    shape whose size is the buffer's, C or Fortran order; a view of the buffer."""
    dt = _dtype_from_json(dtype)
    if (type(shape) is not tuple or len(shape) > 64
            or not all(type(n) is int and n >= 0 for n in shape)):
        raise ValueError("bad array shape")
    if order != "C" and order != "F":
        raise ValueError("bad array order")
    count = math.prod(shape)
    if count * dt.itemsize != memoryview(buffer).nbytes:
        raise ValueError("the array's bytes do not match its dtype and shape")
    if dt.itemsize == 0:
        return np.empty(shape, dtype=dt)
    flat: np.ndarray[Any, Any] = np.frombuffer(buffer, dtype=dt, count=count)
    return flat.reshape(shape, order="F" if order == "F" else "C")


# ---- random generators ----------------------------------------------------------------------

_BIT_GENERATORS = frozenset({"MT19937", "PCG64", "PCG64DXSM", "Philox", "SFC64"})
_SEED_FIELDS = ("entropy", "spawn_key", "pool_size", "n_children_spawned")


def _seed_of(bg: Any) -> tuple[Any, ...] | None:
    seq = getattr(bg, "seed_seq", None) or getattr(bg, "_seed_seq", None)
    if type(seq) is not np.random.SeedSequence:
        return None
    entropy: Any = seq.entropy
    entropy = ([int(w) for w in entropy] if isinstance(entropy, (list, tuple, np.ndarray))
               else None if entropy is None else int(entropy))
    return (entropy, tuple(int(k) for k in seq.spawn_key), int(seq.pool_size),
            int(seq.n_children_spawned))


def portable_random_reduce(obj: object) -> tuple[Any, ...] | None:
    """numpy's ``Generator``, its bit generators and the legacy ``RandomState`` as
    ``portable_random(kind, bit generator name, state, seed)``: the state is numpy's own
    documented dict of numbers (and, for MT19937, an array, itself portable), the seed the
    ``SeedSequence``'s fields (so ``spawn`` goes on as it would have). Pickles of these name
    ``numpy.random._pcg64`` and friends, which moved between numpy versions."""
    random = np.random
    t = type(obj)
    if t is random.Generator:
        bg, what = obj.bit_generator, "generator"  # type: ignore[attr-defined]
    elif t is random.RandomState:
        bg, what = obj._bit_generator, "legacy"  # type: ignore[attr-defined]
    elif t.__name__ in _BIT_GENERATORS and t is getattr(random, t.__name__, None):
        bg, what = obj, "bit_generator"
    else:
        return None
    name = type(bg).__name__
    if name not in _BIT_GENERATORS or type(bg) is not getattr(random, name):
        return None
    # the legacy state adds RandomState's cached gaussian to its bit generator's
    state = obj.get_state(legacy=False) if what == "legacy" else bg.state  # type: ignore[attr-defined]
    return (portable_random, (what, name, state, _seed_of(bg)))


MAX_WORDS = 1 << 16  # numbers in a seed's entropy or spawn key (numpy sets no limit)


def _small_int(n: object, bits: int = 1 << 12) -> bool:
    return type(n) is int and n >= 0 and n.bit_length() <= bits


def _checked_seed(seed: tuple[Any, ...]) -> tuple[Any, ...]:
    """The ``SeedSequence`` fields, bounded (an entropy of at most ``MAX_WORDS`` numbers of
    up to 4096 bits, a spawn key of at most ``MAX_WORDS`` small ints): a file's fields are
    never made into big arrays (``spawn_key=range(1 << 30)`` would be)."""
    entropy, spawn_key, pool_size, children = seed
    if isinstance(entropy, np.ndarray) and entropy.ndim == 1 and entropy.size <= MAX_WORDS:
        entropy = [int(w) for w in entropy]  # (written so by hibernate 0.2.0)
    words = entropy if type(entropy) in (tuple, list) else (entropy,)
    if (len(words) > MAX_WORDS or not all(_small_int(w) for w in words)
            or type(spawn_key) is not tuple or len(spawn_key) > MAX_WORDS
            or not all(_small_int(k, 64) for k in spawn_key)
            or type(pool_size) is not int or not 0 < pool_size <= 1 << 10
            or not _small_int(children, 64)):
        raise ValueError("bad seed sequence")
    return entropy, spawn_key, pool_size, children


def portable_random(what: str, name: str, state: dict[str, Any],
                    seed: tuple[Any, ...] | None) -> object:
    """The generator ``portable_random_reduce`` wrote: a bit generator of a known kind,
    seeded from the saved ``SeedSequence`` fields, set to the saved state (numpy checks
    the state's form)."""
    if what not in ("generator", "legacy", "bit_generator") or name not in _BIT_GENERATORS:
        raise ValueError("not a known numpy random generator")
    if type(state) is not dict or state.get("bit_generator") != name:
        raise ValueError("bad random generator state")
    seq = None
    if seed is not None:
        if type(seed) is not tuple or len(seed) != len(_SEED_FIELDS):
            raise ValueError("bad seed sequence")
        entropy, spawn_key, pool_size, children = _checked_seed(seed)
        seq = np.random.SeedSequence(entropy, spawn_key=spawn_key, pool_size=pool_size,
                                     n_children_spawned=children)
    bg = getattr(np.random, name)(seq)
    if what == "legacy":
        legacy = np.random.RandomState(bg)
        legacy.set_state(state)
        return legacy
    bg.state = state
    return np.random.Generator(bg) if what == "generator" else bg


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
