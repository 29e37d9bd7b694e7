"""Read blobs ahead of the restorer, so the disk works while the CPU deserializes.

A full load asks for blobs in an order known up front (the chosen entries' groups, in
manifest order). ``Prefetcher`` reads them in one background thread, a bounded number of
bytes ahead, while the caller's thread unpickles the previous group. Reading (``preadv``)
and hashing release the GIL, so on two cores the two overlap. A blob asked for out of order
(or never asked for) is simply read directly; errors are raised to the caller when it asks
for that blob, as a direct read would.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

__all__ = ["Prefetcher"]

AHEAD_BYTES = 256 << 20  # at most this much read and not yet asked for (one blob at least)


class Prefetcher:
    def __init__(self, read_blob: Callable[[int], Any], order: Sequence[int],
                 sizes: Sequence[int], ahead: int = AHEAD_BYTES) -> None:
        self._read = read_blob
        # each blob once, first use first; a bad index is left to the direct read to report
        self._order = [i for i in dict.fromkeys(order) if 0 <= i < len(sizes)]
        self._sizes = sizes
        self._ahead = ahead
        self._next = 0
        self._pending: dict[int, Future[Any]] = {}
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        if len(self._order) > 1:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hibernate-read")
            self._fill()

    def _fill(self) -> None:
        assert self._pool is not None
        queued = sum(self._sizes[i] for i in self._pending)
        while self._next < len(self._order):
            index = self._order[self._next]
            if self._pending and queued + self._sizes[index] > self._ahead:
                return
            self._next += 1
            try:
                self._pending[index] = self._pool.submit(self._read, index)
            except RuntimeError:  # interpreter shutting down: no new threads, read directly
                self._next = len(self._order)
                return
            queued += self._sizes[index]

    def __call__(self, index: int) -> Any:
        with self._lock:
            future = self._pending.pop(index, None)
            if self._pool is not None:
                self._fill()
        if future is None:
            return self._read(index)
        return future.result()

    def close(self) -> None:
        """Stop reading ahead; blobs read but never asked for are dropped."""
        if self._pool is not None:
            for f in self._pending.values():
                f.cancel()
            self._pool.shutdown(wait=True)
            self._pool = None
            self._pending.clear()

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
