"""Stores: where hibernate's bytes live: local paths, or any fsspec URL (imported lazily)."""

from __future__ import annotations

import os
from typing import Any

from ._base import ReadHandle, Store, WriteHandle
from ._local import LocalStore
from ._memory import MemoryStore

__all__ = ["LocalStore", "MemoryStore", "ReadHandle", "Store", "WriteHandle", "resolve"]


def resolve(path: str | os.PathLike[str], storage_options: dict[str, Any] | None = None
            ) -> tuple[Store, str]:
    """Split a path or URL into (store, key)."""
    p = os.fspath(path)
    if "://" in p and not p.startswith("file://"):
        from ._remote import url_to_store

        return url_to_store(p, storage_options)
    if storage_options:
        raise ValueError("storage_options apply to remote URLs, not to local paths")
    p = p.removeprefix("file://")
    directory, name = os.path.split(os.path.abspath(os.path.expanduser(p)))
    return LocalStore(directory), name
