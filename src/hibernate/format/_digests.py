"""Chunk digests and the worker threads that compute them (and fetch and compress chunks).

A manifest names the digest of all its chunks: ``"blake3"`` (the default; the blake3 package
is a dependency) or ``"sha256"`` (files written where blake3 is missing, and v1 files and
checkpoint stores). Both release the GIL, so pool threads hash while the caller pickles.
The pools are made per process: a forked child has none of its parent's threads.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from .._threads import submit
from ..errors import FormatError

__all__ = ["DIGESTS", "Hash", "default_digest", "digest_function", "fetch_pool", "later"]

Hash = Callable[[memoryview], str]
T = TypeVar("T")


def _sha256(view: memoryview) -> str:
    return hashlib.sha256(view).hexdigest()


def _blake3(view: memoryview) -> str:
    from blake3 import blake3  # 3-4x SHA-256's speed here, GIL released

    return str(blake3(view).hexdigest())


DIGESTS: dict[str, Hash] = {"sha256": _sha256, "blake3": _blake3}


def has_blake3() -> bool:
    try:
        import blake3  # noqa: F401
    except ImportError:
        return False
    return True


def default_digest() -> str:
    """BLAKE3 where the blake3 package is installed (it is a dependency), else SHA-256."""
    return "blake3" if has_blake3() else "sha256"


def digest_function(name: str) -> Hash:
    fn = DIGESTS.get(name)
    if fn is None:
        raise FormatError(f"unknown chunk digest {name!r}")
    if name == "blake3" and not has_blake3():
        raise FormatError("this file's chunks are digested with BLAKE3: install the "
                          "blake3 package (pip install blake3) to read it")
    return fn


_pools: dict[str, tuple[int, ThreadPoolExecutor]] = {}


def _pool(name: str, workers: int) -> ThreadPoolExecutor:
    current = _pools.get(name)
    if current is None or current[0] != os.getpid():
        current = (os.getpid(), ThreadPoolExecutor(max_workers=workers,
                                                   thread_name_prefix=f"hibernate-{name}"))
        _pools[name] = current
    return current[1]


def fetch_pool() -> ThreadPoolExecutor:
    """Threads for parallel ranged reads and decompression (remote latency hides here)."""
    return _pool("fetch", 8)


def later(fn: Callable[..., T], *args: object) -> Future[T]:
    """Run ``fn(*args)`` in a hashing/compressing pool thread; inline when threads can no
    longer start (at interpreter exit, where ``save_on_exit`` runs)."""
    return submit(_pool("hash", 2), fn, *args)
