"""Handing work to a thread pool, or doing it here when threads can no longer start (at
interpreter exit, where ``save_on_exit`` runs): one helper for every pool hibernate uses."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

__all__ = ["submit"]

T = TypeVar("T")


def submit(pool: Executor, fn: Callable[..., T], *args: Any,
           drain: Callable[[], object] | None = None) -> Future[T]:
    """``pool.submit(fn, *args)``; at interpreter exit, ``fn`` run now in this thread, its
    result or error in an already finished future (after ``drain()``, which waits for what
    the pool still holds, where order matters)."""
    try:
        return pool.submit(fn, *args)
    except RuntimeError:  # interpreter shutting down: no new threads
        if drain is not None:
            drain()
        done: Future[T] = Future()
        try:
            done.set_result(fn(*args))
        except Exception as e:
            done.set_exception(e)
        return done
