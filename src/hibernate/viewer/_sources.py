"""What the viewer shows: a ``.hib`` file or a checkpoint store, told apart by what is at
the path (a store has ``HEAD`` or ``checkpoints/``), and the one session it is asked for
(the file, or one checkpoint of the store), opened lazily with ``data_only``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .. import _api
from ..checkpoints import Checkpoint, Diff, Repo, diff
from ..checkpoints._cas import StoreSource
from ..checkpoints._history import info
from ..checkpoints._record import engine_location
from ..errors import HibernateError
from ..format import Manifest
from ..session import Snapshot
from ..storage import ReadHandle, resolve
from ._framediff import FrameChange, frame_change

__all__ = ["Source", "is_store"]


def is_store(path: str, options: dict[str, Any] | None = None) -> bool:
    """A checkpoint store (``HEAD`` or ``checkpoints/`` under the path), not a file."""
    store, _ = resolve(path.rstrip("/") + "/HEAD", options)
    return store.exists("HEAD") or any(True for _ in store.list("checkpoints/"))


class _NoFile(ReadHandle):
    """A snapshot of a checkpoint reads chunks from the store, never from one file."""

    size = 0

    def read(self, start: int, length: int) -> bytes:
        raise OSError("a checkpoint has no file")

    def readinto(self, start: int, buf: memoryview) -> None:
        raise OSError("a checkpoint has no file")

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class Source:
    """One path given to the viewer, with its storage options."""

    path: str
    options: dict[str, Any] | None = None
    store: bool = False
    # checkpoint id -> its record's summary: records never change, so each is read once
    _seen: dict[str, Checkpoint] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def at(cls, path: str | os.PathLike[str], options: dict[str, Any] | None = None) -> Source:
        p = os.fspath(path)
        return cls(p, options, is_store(p, options))

    def repo(self) -> Repo:
        return Repo(self.path, self.options)

    def manifest(self, cid: str | None = None) -> Manifest:
        """The file's manifest, or checkpoint ``cid``'s (default: HEAD); nothing unpickled."""
        if not self.store:
            return _api.inspect(self.path, storage_options=self.options)
        repo = self.repo()
        full = repo.full_id(cid) if cid else repo.head()
        if full is None:
            raise LookupError(f"{self.path} has no checkpoints")
        return replace(repo.read(full)[1], path=f"{self.path}@{full}")

    def open(self, cid: str | None = None) -> Snapshot:
        """A data-only snapshot: values that need code from the file raise, never run it."""
        if not self.store:
            return _api.open(self.path, data_only=True, storage_options=self.options)
        repo = self.repo()
        full = repo.full_id(cid) if cid else repo.head()
        if full is None:
            raise LookupError(f"{self.path} has no checkpoints")
        manifest = repo.read(full)[1]
        source = StoreSource(repo.store, legacy=manifest.format_version < 2)
        return Snapshot(f"{self.path}@{full}", _NoFile(), source, manifest, trusted=False,
                        data_only=True, location=engine_location(repo))

    def timeline(self) -> list[Checkpoint]:
        """Every checkpoint in the store (unreadable records left out), newest first; only
        the records not seen before are read."""
        repo = self.repo()
        ids = repo.ids()
        for cid in ids:
            if cid not in self._seen:
                try:
                    meta, manifest = repo.read(cid)
                except HibernateError:
                    continue
                self._seen[cid] = info(cid, meta, manifest)
        found = [self._seen[cid] for cid in ids if cid in self._seen]
        return sorted(found, key=lambda c: c.time, reverse=True)

    def head(self) -> str | None:
        return self.repo().head()

    def diff(self, a: str, b: str) -> Diff:
        repo = self.repo()
        return diff(repo.full_id(a), repo.full_id(b), store=self.path,
                    storage_options=self.options)

    def frame_changes(self, a: str, b: str, names: Sequence[str]) -> list[FrameChange]:
        """For each of ``names`` that is a DataFrame in checkpoints ``a`` and ``b``, what
        changed in it (``_framediff``: from the digests, and cell by cell when small)."""
        repo = self.repo()
        ma, mb = (repo.read(repo.full_id(c))[1] for c in (a, b))
        sa, sb = (StoreSource(repo.store, legacy=m.format_version < 2) for m in (ma, mb))
        out = []
        with self.open(a) as old, self.open(b) as new:
            for name in names:
                found = frame_change(name, ma, mb, sa, sb, (old, new))
                if found is not None:
                    out.append(found)
        return out
