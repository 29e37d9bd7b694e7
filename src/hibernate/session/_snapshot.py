"""Snapshot: a lazy, read-only Mapping over one version of a hibernate file."""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any

from ..engines import Location
from ..errors import HibernateError, UntrustedFileError
from ..format import BlobReader, ChunkSource, is_own
from ..format._manifest import SKIPPED, Manifest
from ..storage import ReadHandle
from ._restore import PROPAGATE, NeedsCode, Restorer, check_trust, describe

__all__ = ["Snapshot"]


class _LazyGlobals(dict):  # type: ignore[type-arg]
    """Globals for functions restored from a snapshot: missing names load from it."""

    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__(__builtins__=builtins, __name__="__main__")
        self._snapshot = snapshot

    def __missing__(self, name: str) -> object:
        if name in self._snapshot:
            value = self._snapshot[name]
            self[name] = value
            return value
        raise KeyError(name)


class Snapshot(Mapping[str, Any]):
    """The variables of a saved session, loaded on first access and cached.

    It keeps the file open (the version that was opened is the version that is read).
    Within one Snapshot, identity between values holds as in the saved session.
    """

    def __init__(self, path: str, src: ReadHandle, source: ChunkSource, manifest: Manifest,
                 trusted: bool, data_only: bool = False,
                 location: Location | None = None) -> None:
        self.path = path
        self.manifest = manifest
        self.trusted = trusted
        self.data_only = data_only
        self._src: ReadHandle | None = src
        self._bytes_read = 0
        self._entries = {e.name: e for e in manifest.entries if e.kind != SKIPPED}
        self._globals = _LazyGlobals(self)
        reader = BlobReader(source, manifest.blobs, manifest.digest, own=is_own(manifest))
        self._restorer = Restorer(manifest, reader.read, self._globals,
                                  restricted=data_only or not trusted, location=location)

    def __getitem__(self, name: str) -> Any:
        entry = self._entries[name]
        if self._src is None:
            raise HibernateError(f"snapshot of {self.path} is closed")
        if not self.data_only:
            check_trust([entry], self.manifest, self.trusted, self.path)
        try:
            value = self._restorer.value(entry)
        except NeedsCode as e:
            raise UntrustedFileError(f"{name!r} in {self.path}: {e}; open the file with "
                                     "trust=True to restore it", (name,)) from None
        except HibernateError:
            raise
        except BaseException as e:  # a native decoder's panic too, as in a load
            if isinstance(e, PROPAGATE):
                raise
            raise HibernateError(f"cannot restore {name!r}: {describe(e)}") from e
        self._globals.setdefault(name, value)  # restored functions find it after close()
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    @property
    def bytes_read(self) -> int:
        """Bytes fetched from the file so far (trailer, manifest and the values accessed)."""
        return self._bytes_read if self._src is None else self._src.bytes_read

    def close(self) -> None:
        if self._src is not None:
            self._bytes_read = self._src.bytes_read
            self._src.close()
            self._src = None

    def __enter__(self) -> Snapshot:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<hibernate.Snapshot {self.path!r}: {len(self)} names>"
