"""A store's history: the checkpoints (``log``), what changed between two (``diff``), and
removing old ones with the chunks only they needed (``prune``)."""

from __future__ import annotations

import datetime
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .._text import clean, human, table
from ..errors import HibernateError
from ..format import Kind, Manifest, read_file_manifest, verify_chunk
from ..session._engines import engine_prefixes
from ..storage import resolve
from ..trust import user_keys
from ._cas import StoreSource, chunk_key, legacy_key
from ._repo import Repo

__all__ = ["Checkpoint", "Diff", "diff", "info", "log", "log_table", "object_sizes", "prune",
           "retain", "verify"]


@dataclass(frozen=True)
class Checkpoint:
    id: str
    parent: str | None
    time: str
    message: str
    names: tuple[str, ...] = ()
    bytes_total: int = 0
    bytes_written: int = 0

    def row(self) -> tuple[str, str, str, int, str]:
        """(id, time, message, names, size): a line of ``hibernate log``'s table."""
        return (self.id, self.time, self.message, len(self.names), human(self.bytes_total))

    def __str__(self) -> str:
        return (f"{clean(self.id, 16)}  {clean(self.time, 40)}  {clean(self.message, 60)!s:60}  "
                f"{len(self.names)} names, {human(self.bytes_total)}")


def log_table(checkpoints: list[Checkpoint], head: str | None) -> str:
    """``hibernate log``'s table, HEAD marked."""
    rows = [(("* " if c.id == head else "  ") + c.id, *c.row()[1:]) for c in checkpoints]
    return table(("id", "time", "message", "names", "size"), rows, right=(3, 4))


@dataclass(frozen=True)
class Diff:
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]
    sizes: dict[str, tuple[int, int]]

    def rows(self) -> list[tuple[str, str, str, str]]:
        """(change, name, size before, size after): added, then removed, then changed."""
        sizes = self.sizes
        return ([("added", n, "", human(sizes[n][1])) for n in self.added]
                + [("removed", n, human(sizes[n][0]), "") for n in self.removed]
                + [("changed", n, human(sizes[n][0]), human(sizes[n][1]))
                   for n in self.changed])

    def __str__(self) -> str:
        rows = self.rows()
        return table(("change", "name", "before", "after"), rows, right=(2, 3)) if rows \
            else "no differences"


def info(cid: str, meta: dict[str, Any], manifest: Manifest) -> Checkpoint:
    names = tuple(e.name for e in manifest.entries if e.kind != Kind.SKIPPED)
    parent = meta.get("parent")
    return Checkpoint(cid, parent if isinstance(parent, str) else None, str(meta.get("time")),
                      str(meta.get("message")), names, sum(b.length for b in manifest.blobs),
                      int(meta.get("bytes_written", 0) or 0))


def log(store: str | os.PathLike[str], *, all: bool = False,
        storage_options: dict[str, Any] | None = None) -> list[Checkpoint]:
    """Checkpoints, newest first: the current line of history (HEAD and its ancestors), or
    every checkpoint in the store with ``all=True``. Unreadable records are left out."""
    return _log(Repo(store, storage_options), all)


def _log(repo: Repo, all: bool) -> list[Checkpoint]:
    infos = {}
    for cid in repo.ids():
        try:
            meta, manifest = repo.read(cid)
        except HibernateError:
            continue
        infos[cid] = info(cid, meta, manifest)
    if all:
        return sorted(infos.values(), key=lambda c: c.time, reverse=True)
    line: list[Checkpoint] = []
    current = repo.head()
    while current is not None and current in infos and len(line) <= len(infos):
        line.append(infos[current])
        current = infos[current].parent
    return line


def _manifest_of(ref: str, repo: Repo | None,
                 storage_options: dict[str, Any] | None) -> Manifest:
    if repo is not None:
        return repo.read(ref)[1]
    store, name = resolve(ref, storage_options)
    with store.open_read(name) as src:
        return read_file_manifest(src, user_keys())


def diff(a: str, b: str, *, store: str | os.PathLike[str] | None = None,
         storage_options: dict[str, Any] | None = None) -> Diff:
    """What changed from ``a`` to ``b``: two .hib paths, or two checkpoint ids in ``store``.
    A variable changed when its serialized bytes differ (compared by chunk digests)."""
    repo = Repo(store, storage_options) if store is not None else None
    ma, mb = _manifest_of(a, repo, storage_options), _manifest_of(b, repo, storage_options)
    da, db = _digests(ma), _digests(mb)
    sa, sb = _sizes(ma), _sizes(mb)
    added = tuple(n for n in db if n not in da)
    removed = tuple(n for n in da if n not in db)
    changed = tuple(n for n in da if n in db and da[n] != db[n])
    sizes = {n: (sa.get(n, 0), sb.get(n, 0)) for n in added + removed + changed}
    return Diff(added, removed, changed, sizes)


def _digests(m: Manifest) -> dict[str, tuple[str, ...]]:
    groups = {g.id: g for g in m.groups}
    out: dict[str, tuple[str, ...]] = {}
    for e in m.entries:
        if e.kind == Kind.SKIPPED:
            continue
        if e.group is None:
            out[e.name] = (e.kind, e.module or "", e.qualname or "")
        else:
            g = groups[e.group]
            out[e.name] = tuple(c.digest for b in g.blobs for c in m.blobs[b].chunks)
    return out


def _sizes(m: Manifest) -> dict[str, int]:
    return {e.name: e.size for e in m.entries}


def needed_keys(manifest: Manifest) -> set[str]:
    """The chunk objects a checkpoint's manifest needs."""
    legacy = manifest.format_version < 2
    return {legacy_key(c.digest) if legacy else chunk_key(c.digest, c.codec)
            for b in manifest.blobs for c in b.chunks}


def prune(store: str | os.PathLike[str], *, keep_last: int | None = None,
          keep_within: datetime.timedelta | None = None,
          storage_options: dict[str, Any] | None = None) -> list[str]:
    """Remove checkpoints not kept, then every chunk no kept checkpoint needs (under the
    store's lock). Kept: HEAD, the ``keep_last`` newest, those newer than ``keep_within``.
    Returns the removed checkpoint ids."""
    repo = Repo(store, storage_options)
    with repo.lock():
        every = _log(repo, all=True)
        now = datetime.datetime.now(datetime.timezone.utc)
        head = repo.head()
        kept = {c.id for c in every[:keep_last or 0]} | ({head} if head else set())
        if keep_within is not None:
            kept |= {c.id for c in every
                     if now - datetime.datetime.fromisoformat(c.time) <= keep_within}
        if keep_last is None and keep_within is None:
            kept = {c.id for c in every}
        unreadable = sorted(set(repo.ids()) - {c.id for c in every})
        if unreadable:
            raise HibernateError(f"cannot prune {repo.url}: checkpoint(s) {unreadable} cannot "
                                 "be read (made by a newer hibernate, or damaged); their chunks "
                                 "might be deleted")
        removed = [c.id for c in every if c.id not in kept]
        for cid in removed:
            repo.store.delete(f"checkpoints/{cid}.ckpt")
        needed: set[str] = set()
        engine_data: set[str] = set()
        for cid in kept:
            manifest = repo.read(cid)[1]
            needed |= needed_keys(manifest)
            engine_data |= engine_prefixes(manifest.entries)
        for prefix in ("chunks/", "objects/"):
            for key in list(repo.store.list(prefix)):
                if key not in needed:
                    repo.store.delete(key)
        for key in list(repo.store.list("engine/")):  # engine data: engine/<id>/<name>/...
            if "/".join(key.split("/")[1:3]) not in engine_data:
                repo.store.delete(key)
        repo.store.put("PRUNED", str(time.time_ns()).encode())  # reused chunks may be gone
    return removed


def object_sizes(manifests: Iterable[Manifest]) -> dict[str, int]:
    """Each chunk's stored size, by digest, from every record that names it: a record
    written when the store already had the chunk says 0 for it (it wrote nothing), the one
    that wrote it says its size."""
    sizes: dict[str, int] = {}
    for manifest in manifests:
        for b in manifest.blobs:
            for chunk in b.chunks:
                stored = chunk.stored or (chunk.raw if chunk.codec == "raw" else 0)
                sizes[chunk.digest] = max(sizes.get(chunk.digest, 0), stored)
    return sizes


def retain(store: str | os.PathLike[str], *, keep_last: int | None = None,
           max_bytes: int | None = None, storage_options: dict[str, Any] | None = None
           ) -> list[str]:
    """A retention rule: keep the newest checkpoints, at most ``keep_last`` of them and, of
    those, as many as fit in ``max_bytes`` of stored chunks (counted once however many
    checkpoints share them; the newest is always kept, and HEAD); prune the rest. Returns
    the removed ids. Cheap when nothing is due: only the store's list of checkpoints is read
    unless a size cap is set."""
    repo = Repo(store, storage_options)
    count = sum(1 for _ in repo.ids())
    if max_bytes is None and (keep_last is None or count <= keep_last):
        return []
    every = _log(repo, all=True)
    n = len(every) if keep_last is None else min(keep_last, len(every))
    if max_bytes is not None:
        manifests = {c.id: repo.read(c.id)[1] for c in every}
        size = object_sizes(manifests.values())
        needed: set[str] = set()
        fit = total = 0
        for c in every[:n]:
            for b in manifests[c.id].blobs:
                for chunk in b.chunks:
                    if chunk.digest not in needed:
                        needed.add(chunk.digest)
                        total += size[chunk.digest]
            if fit and total > max_bytes:
                break
            fit += 1
        n = fit
    if n >= len(every):
        return []
    return prune(store, keep_last=max(n, 1), storage_options=storage_options)


def verify(store: str | os.PathLike[str], *, storage_options: dict[str, Any] | None = None
           ) -> tuple[list[Checkpoint], dict[str, list[str]]]:
    """Check every checkpoint record and every chunk they need (each chunk read once):
    the checkpoints, and for each damaged or missing chunk, what is wrong and which
    checkpoints' names it holds."""
    repo = Repo(store, storage_options)
    every = _log(repo, all=True)
    damaged: dict[str, list[str]] = {}
    checked: set[tuple[str, str]] = set()
    for c in every:
        _, manifest = repo.read(c.id)
        source = StoreSource(repo.store, legacy=manifest.format_version < 2)
        for g in manifest.groups:
            for b in g.blobs:
                for chunk in manifest.blobs[b].chunks:
                    key = (manifest.digest, source.key(chunk))
                    if key in checked and key[1] not in damaged:
                        continue
                    checked.add(key)
                    try:
                        verify_chunk(chunk, source.read_chunk(chunk), manifest.digest)
                    except HibernateError as e:
                        damaged.setdefault(key[1], [str(e)]).append(
                            f"{c.id}: {', '.join(g.names)}")
    unreadable = sorted(set(repo.ids()) - {c.id for c in every})
    for cid in unreadable:
        damaged[f"checkpoints/{cid}.ckpt"] = ["cannot be read (damaged, or from a newer "
                                              "hibernate)"]
    return every, damaged
