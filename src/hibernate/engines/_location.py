"""Where a session's engine data lives, and the rules every path in it obeys.

A ``.hib`` file at ``PATH`` keeps its engines' data under ``PATH.engine/``, a directory (or
prefix, for an fsspec URL) beside it: one fresh prefix per save (``fresh_prefix``), so a
save never writes where a published file still points. Every path the manifest records is
relative to that base and made only of plain name segments (``check_relative``): a
hand-built manifest can never point a reader outside the session's prefix.
"""

from __future__ import annotations

import os
import posixpath
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from ..errors import EngineError

__all__ = ["WRITING", "Location", "check_relative", "fresh_prefix"]

WRITING = "_writing"
_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.=-]{0,127}\Z")


def check_relative(path: object) -> str:
    """``path`` if it is a relative path of plain segments (no ``..``, no ``/`` first, no
    scheme); EngineError otherwise."""
    if not isinstance(path, str) or not path or len(path) > 1024:
        raise EngineError("an engine data path is missing or too long")
    for segment in path.split("/"):
        if not _SEGMENT.match(segment) or segment.strip(".") == "":
            raise EngineError(f"an engine data path leaves the session's prefix: {path!r}")
    return path


def fresh_prefix(name: str, save_id: str | None = None) -> str:
    """A prefix no earlier save used: the save's random id, then the entry's name (made
    plain)."""
    plain = re.sub(r"[^A-Za-z0-9_]", "_", name)[:64] or "value"
    return f"{save_id or secrets.token_hex(8)}/{plain}"


@dataclass(frozen=True)
class Location:
    """The base URL (a local directory or an fsspec URL) of a session's engine data and the
    storage options to reach it (handed to the engine's workers, which write and read it)."""

    base: str
    storage_options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def beside(cls, path: str | os.PathLike[str],
               storage_options: dict[str, Any] | None = None) -> Location:
        """The engine data of the session file at ``path``: ``PATH.engine`` (absolute for a
        local path: the engine's workers may run in another directory)."""
        text = os.fspath(path)
        if "://" not in text:
            text = os.path.abspath(text)
        return cls(text.rstrip("/") + ".engine", dict(storage_options or {}))

    def url(self, relative: str) -> str:
        """The full URL of a checked relative path."""
        return posixpath.join(self.base, check_relative(relative))

    def filesystem(self) -> tuple[Any, str]:
        """(fsspec filesystem, the base's path on it)."""
        try:
            import fsspec  # type: ignore[import-untyped]
        except ImportError:
            raise EngineError("engine data needs fsspec: pip install fsspec") from None
        fs, root = fsspec.core.url_to_fs(self.base, **self.storage_options)
        return fs, root

    def marker(self, relative: str) -> str:
        """The URL of the file that says a save is still writing under ``relative``: the
        engine's tasks write only while it exists, and take their file back if it is gone
        once they have written (so a task still running when a save fails leaves nothing)."""
        return self.url(f"{check_relative(relative)}/{WRITING}")

    def start(self, relative: str) -> None:
        fs, root = self.filesystem()
        fs.makedirs(posixpath.join(root, check_relative(relative)), exist_ok=True)
        fs.pipe_file(posixpath.join(root, relative, WRITING), b"")

    def finish(self, relative: str) -> None:
        fs, root = self.filesystem()
        fs.rm(posixpath.join(root, check_relative(relative), WRITING))

    def remove(self, relative: str) -> None:
        """Delete everything under ``relative`` (a failed or replaced save's data): the
        writing marker first, so that no task writes there once the listing is made."""
        fs, root = self.filesystem()
        target = posixpath.join(root, check_relative(relative))
        try:
            fs.rm(posixpath.join(target, WRITING))
        except (FileNotFoundError, OSError):
            pass
        try:
            fs.rm(target, recursive=True)
        except FileNotFoundError:
            pass
        top = posixpath.join(root, check_relative(relative).split("/")[0])
        try:  # the save's own directory, once empty
            if not fs.ls(top):
                fs.rm(top, recursive=True)
        except (FileNotFoundError, OSError):
            pass
