"""Stores: where hibernate's bytes live (local disk now; fsspec URLs arrive with remote storage)."""

from __future__ import annotations

import os
from typing import Any

from ._base import ReadHandle, Store, WriteHandle
from ._local import LocalStore

__all__ = ["LocalStore", "ReadHandle", "Store", "WriteHandle", "resolve"]


def resolve(path: str | os.PathLike[str], storage_options: dict[str, Any] | None = None
            ) -> tuple[Store, str]:
    """Split a path or URL into (store, key)."""
    p = os.fspath(path)
    if "://" in p and not p.startswith("file://"):
        raise NotImplementedError(f"remote storage ({p.split('://')[0]}://) is not supported yet")
    if storage_options:
        raise NotImplementedError("storage_options apply to remote URLs, not supported yet")
    p = p.removeprefix("file://")
    directory, name = os.path.split(os.path.abspath(os.path.expanduser(p)))
    return LocalStore(directory), name
