"""Live resources saved by their own rules: what they are, not what pickle would copy.

- ``threading`` locks (``Lock``, ``RLock``) come back as new, unlocked locks; so objects
  built on them (``Event``, ``Condition``, ``Semaphore``, ``queue.Queue``) come back in the
  state their own attributes hold (an ``Event`` set or not), with no thread waiting.
- A file opened for reading (text or binary, by path) comes back opened at the same
  position, if the file at that path is still the same (size and modification time);
  otherwise the value fails with ``ResourceChangedError`` saying what changed. A file open
  for writing or appending is never reopened (reopening truncates or moves the user's
  file): it stays unsaveable, with that reason.
- A ``sqlite3`` connection to a database file reconnects to it read-only. An in-memory
  database has nothing to reconnect to and stays unsaveable.
- An ``ipywidgets`` widget is saved by its synced state (widgets it holds, such as a box's
  children or its layout, by theirs) and comes back as a new live widget in that state;
  its comm is never saved, and callbacks registered with ``observe``/``on_click`` are not
  kept.

These are pickle reductions to hibernate's own functions, so they load from trusted files
only, like any pickle; the entry's ``how`` is ``reopened``.

Non-goals: sockets, processes, threads and database servers (no meaning after a restart).
"""

from __future__ import annotations

import _thread
import io
import os
import sys
import threading
from typing import Any

__all__ = ["ResourceChangedError", "is_resource", "is_widget", "resource_reduce", "widget_state"]

_LOCK = type(_thread.allocate_lock())
_RLOCK = type(threading.RLock())
FILE_TYPES = (io.FileIO, io.BufferedReader, io.BufferedWriter, io.BufferedRandom,
              io.TextIOWrapper)


class ResourceChangedError(OSError):
    """A saved live resource cannot be reopened as it was (its file changed or is gone)."""


def _is_sqlite(obj: object) -> bool:
    t = type(obj)
    return t.__module__ == "sqlite3" and t.__name__ == "Connection"


def _widget_type() -> type | None:
    module = sys.modules.get("ipywidgets")
    return getattr(module, "Widget", None) if module is not None else None


def is_widget(obj: object) -> bool:
    widget = _widget_type()
    return widget is not None and isinstance(obj, widget)


def widget_state(obj: Any) -> dict[str, Any]:
    """A widget's synced state, by trait name (widgets it holds stay widget objects).
    Selection widgets sync an index into options they keep unsynced: the options are taken
    too, and the index (not the value, which may repeat)."""
    state = {k: getattr(obj, k) for k in obj.keys
             if not k.startswith("_") or k == "_dom_classes"}  # (add_class)
    if obj.has_trait("options"):
        # options, then the selected index (values may repeat; an index does not)
        state["options"] = obj.options
        for key in ("value", "label"):
            state.pop(key, None)
    return state


def is_resource(obj: object) -> bool:
    """A value that comes back by its own rules (``how`` is ``reopened``)."""
    return (type(obj) in (_LOCK, _RLOCK) or isinstance(obj, FILE_TYPES)
            or _is_sqlite(obj) or is_widget(obj))


def resource_reduce(obj: object) -> tuple[Any, ...] | None:
    """The reduction of a live resource, or None when ``obj`` is not one. Raises
    ``TypeError`` (with the reason) for a resource that is never reopened."""
    t = type(obj)
    if t is _LOCK:
        return (_thread.allocate_lock, ())
    if t is _RLOCK:
        return (threading.RLock, ())
    if isinstance(obj, FILE_TYPES):
        return _file_reduce(obj)
    if _is_sqlite(obj):
        return _sqlite_reduce(obj)
    if is_widget(obj):  # by its state, never its comm: a new live widget on load
        return (_make_widget, (type(obj), widget_state(obj)))
    return None


def _make_widget(cls: type, state: dict[str, Any]) -> Any:
    """A new widget of ``cls`` in ``state`` (its traits set together, so that ``value``,
    ``min`` and ``max`` are checked against each other only once all are set)."""
    return cls(**state)


def _file_reduce(f: Any) -> tuple[Any, ...]:
    name = getattr(f, "name", None)
    mode = getattr(f, "mode", "")
    if not isinstance(name, str):
        raise TypeError(f"an open file without a path ({name!r}): reopen it after loading")
    if f.closed:
        raise TypeError(f"a closed file ({name!r})")
    if mode not in ("r", "rb", "rt"):
        raise TypeError(f"a file open for writing ({name!r}, mode {mode!r}): never reopened, "
                        "as reopening would truncate or move it; reopen it after loading")
    try:
        position = f.tell()
    except OSError:  # a text file read by `for line in f`: Python cannot tell where it is
        raise TypeError(f"a file read by iteration ({name!r}): its position cannot be "
                        "told; read it with readline() to save it, or reopen it after "
                        "loading") from None
    st = os.fstat(f.fileno())
    path = os.path.abspath(name)
    try:
        same = os.stat(path).st_ino == st.st_ino
    except OSError:
        same = False
    if not same:
        raise TypeError(f"an open file whose path ({name!r}) no longer names it")
    text = isinstance(f, io.TextIOWrapper)
    return (_reopen, (path, "r" if text else "rb", f.encoding if text else None,
                      f.errors if text else None, position, st.st_size, st.st_mtime_ns))


def _reopen(path: str, mode: str, encoding: str | None, errors: str | None, position: int,
            size: int, mtime_ns: int) -> Any:
    """Open ``path`` for reading at ``position`` if it is still the file that was saved."""
    if mode not in ("r", "rb"):
        raise ValueError(f"a saved file cannot be reopened in mode {mode!r}")
    try:
        st = os.stat(path)
    except OSError as e:
        raise ResourceChangedError(f"the file {path!r} is gone ({e.strerror}): not "
                                   "reopened") from None
    if (st.st_size, st.st_mtime_ns) != (size, mtime_ns):
        raise ResourceChangedError(f"the file {path!r} changed since the save (size or "
                                   "modification time): not reopened")
    f = open(path, mode, encoding=encoding, errors=errors)  # noqa: SIM115 (it is the value)
    try:
        f.seek(position)
    except BaseException:
        f.close()
        raise
    return f


def _sqlite_reduce(conn: Any) -> tuple[Any, ...]:
    try:
        rows = conn.execute("PRAGMA database_list").fetchall()
    except Exception as e:
        raise TypeError(f"a sqlite3 connection that cannot be asked its file ({e})") from None
    path = next((row[2] for row in rows if row[1] == "main"), "")
    if not path:
        raise TypeError("a sqlite3 connection to an in-memory database: nothing to "
                        "reconnect to")
    return (_sqlite_readonly, (path,))


def _sqlite_readonly(path: str) -> Any:
    """A read-only connection to the database file ``path``."""
    import sqlite3
    import urllib.parse

    if not os.path.exists(path):
        raise ResourceChangedError(f"the database {path!r} is gone: not reconnected")
    return sqlite3.connect(f"file:{urllib.parse.quote(path)}?mode=ro", uri=True)
