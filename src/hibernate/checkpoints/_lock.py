"""A checkpoint store's LOCK: created only if absent (``Store.create``), refreshed while held
(so a long upload is not taken for a dead holder) by one heartbeat thread per process,
broken when stale, removed on exit only if it is still ours.

Where the store has no atomic create (``Store.atomic_create`` is false: some fsspec
filesystems), two processes starting at the same instant can both believe they hold it;
the README names this limit.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
import time

from ..errors import StorageError
from ..storage import Store

__all__ = ["LOCK_TIMEOUT", "STALE_LOCK", "Lock"]

LOCK_TIMEOUT = 60.0
STALE_LOCK = 600.0


class _Heartbeat:
    """One daemon thread per process that refreshes every lock this process holds (starting
    and joining a thread per checkpoint would cost more than the checkpoint)."""

    def __init__(self) -> None:
        self._held: set[Lock] = set()
        self._guard = threading.Lock()
        self._thread: tuple[int, threading.Thread] | None = None

    def add(self, lock: Lock) -> None:
        with self._guard:
            self._held.add(lock)
            if self._thread is None or self._thread[0] != os.getpid():
                t = threading.Thread(target=self._run, daemon=True, name="hibernate-lock")
                self._thread = (os.getpid(), t)
                t.start()

    def remove(self, lock: Lock) -> None:
        with self._guard:
            self._held.discard(lock)

    def _run(self) -> None:
        while True:
            time.sleep(STALE_LOCK / 4)
            with self._guard:
                held = list(self._held)
            for lock in held:
                lock.refresh()


_HEARTBEAT = _Heartbeat()


class Lock:
    def __init__(self, store: Store, url: str, timeout: float | None = None) -> None:
        self.store, self.url = store, url
        self.timeout = LOCK_TIMEOUT if timeout is None else timeout
        self.token = secrets.token_hex(8)

    def _body(self) -> bytes:
        return json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                           "time": time.time(), "token": self.token}).encode()

    def _holder(self) -> dict[str, object] | None:
        try:
            info = json.loads(self.store.get("LOCK"))
        except (StorageError, ValueError):
            return None
        return info if isinstance(info, dict) else None

    def _ours(self) -> bool:
        info = self._holder()
        return info is not None and info.get("token") == self.token

    def refresh(self) -> None:
        if self._ours():
            try:
                self.store.put("LOCK", self._body())
            except StorageError:
                pass  # the next beat tries again; a lost lock is found by _ours

    def _break_if_stale(self) -> None:
        info = self._holder()
        if info is None:
            return
        try:
            since = time.time() - float(info.get("time", 0))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            since = STALE_LOCK + 1
        if since > STALE_LOCK:
            self.store.delete("LOCK")

    def __enter__(self) -> Lock:
        deadline = time.monotonic() + self.timeout
        while not self.store.create("LOCK", self._body(), durable=False):
            self._break_if_stale()
            if time.monotonic() > deadline:
                raise StorageError(f"the checkpoint store {self.url} is locked by another "
                                   f"process (LOCK); gave up after {self.timeout:.0f} s. "
                                   "If no process is using it, delete the LOCK object.")
            time.sleep(0.05)
        _HEARTBEAT.add(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _HEARTBEAT.remove(self)
        if self._ours():
            self.store.delete("LOCK")
