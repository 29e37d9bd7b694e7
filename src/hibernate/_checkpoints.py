"""Checkpoints: an incremental, deduplicated history of a session in a store.

Layout of a store (a directory or any fsspec URL)::

    objects/ab/cdef...     one object per chunk, named by the SHA-256 of its raw bytes
    checkpoints/<id>.ckpt  one small signed manifest per checkpoint, written last
    HEAD                   the id the next checkpoint's parent is (moved by checkout)
    LOCK                   held while a checkpoint is written or a prune runs

A checkpoint serializes the session exactly as ``save`` does, cuts every buffer into the
same 4 MiB chunks, and uploads only chunks the store does not have: an unchanged variable
costs its hashing, not its bytes. Readers only follow checkpoint manifests, so a crash
mid-checkpoint leaves orphan chunks (removed by ``prune``), never a broken checkpoint.
A ``.ckpt`` is ``b"HIBCKPT1"``, a 16-byte key id, an HMAC-SHA256 of the JSON that follows
(signed like files, so your own store loads without ``trust=True``), and the JSON:
``{"checkpoint": {...}, "manifest": {...}}`` whose manifest is a file manifest whose chunk
offsets are 0. The id is the first 16 hex digits of the SHA-256 of that JSON.

Non-goals (for now): content-defined chunking (an insertion shifts later chunks), autosave.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import secrets
import socket
import threading
import time
import types
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from . import _trust
from ._api import _namespace, restore_manifest
from ._capture import capture
from ._format import CHUNK_SIZE, _sha256, header_bytes, read_manifest
from ._identity import ReachesNamespace, identity_ids
from ._manifest import FORMAT_VERSION, Blob, Chunk, Group, Manifest, SerializerRef
from ._meta import session_info
from ._reports import LoadReport, clean, human
from ._restore import NeedsCode, static_reference
from ._select import Selector, ipython_hidden
from .errors import FormatError, HibernateError, IntegrityError, StorageError, VersionError
from .storage import Store, resolve

__all__ = ["Checkpoint", "Diff", "checkout", "checkpoint", "diff", "export_checkpoint",
           "import_checkpoint", "log", "prune"]

MAGIC = b"HIBCKPT1"
LOCK_TIMEOUT = 60.0
STALE_LOCK = 600.0


@dataclass(frozen=True)
class Checkpoint:
    id: str
    parent: str | None
    time: str
    message: str
    names: tuple[str, ...] = ()
    bytes_total: int = 0
    bytes_written: int = 0

    def __str__(self) -> str:
        return (f"{self.id}  {self.time}  {clean(self.message, 60)!s:60}  "
                f"{len(self.names)} names, {human(self.bytes_total)}")


@dataclass(frozen=True)
class Diff:
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]
    sizes: dict[str, tuple[int, int]]

    def __str__(self) -> str:
        rows = [f"+ {n}  {human(self.sizes[n][1])}" for n in self.added]
        rows += [f"- {n}  {human(self.sizes[n][0])}" for n in self.removed]
        rows += [f"~ {n}  {human(self.sizes[n][0])} -> {human(self.sizes[n][1])}"
                 for n in self.changed]
        return "\n".join(clean(r, 200) for r in rows) or "no differences"


# ---- the store ------------------------------------------------------------------------

class _Store:
    def __init__(self, url: str | os.PathLike[str],
                 storage_options: dict[str, Any] | None) -> None:
        root = os.fspath(url).rstrip("/") + "/"
        store, _ = resolve(root + "x", storage_options)
        self.store: Store = store
        self.url = os.fspath(url)

    def get(self, key: str) -> bytes:
        with self.store.open_read(key) as h:
            return h.read(0, h.size)

    def put(self, key: str, data: bytes | memoryview) -> None:
        out = self.store.open_write(key)
        try:
            out.write(data)
            out.commit()
        except BaseException:
            out.discard()
            raise

    def object_key(self, digest: str) -> str:
        return f"objects/{digest[:2]}/{digest[2:]}"

    def head(self) -> str | None:
        return self.get("HEAD").decode().strip() if self.store.exists("HEAD") else None

    def ids(self) -> list[str]:
        return [k.split("/")[-1][:-5] for k in self.store.list("checkpoints/")
                if k.endswith(".ckpt")]

    # A lock object: created only if absent (O_EXCL locally); a stale one is broken.
    def lock(self, timeout: float = LOCK_TIMEOUT) -> _Lock:
        return _Lock(self, timeout)


class _Lock:
    """The store's LOCK: created only if absent, refreshed while held (so a long upload is
    not taken for a dead holder), removed on exit only if it is still ours."""

    def __init__(self, s: _Store, timeout: float) -> None:
        self.s, self.timeout = s, timeout
        self.token = secrets.token_hex(8)
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def _body(self) -> bytes:
        return json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                           "time": time.time(), "token": self.token}).encode()

    def _ours(self) -> bool:
        try:
            return bool(json.loads(self.s.get("LOCK")).get("token") == self.token)
        except Exception:
            return False

    def _heartbeat(self) -> None:
        while not self._stop.wait(STALE_LOCK / 4):
            if self._ours():
                try:
                    self.s.put("LOCK", self._body())
                except Exception:
                    pass

    def _try(self) -> bool:
        root = getattr(self.s.store, "root", None)
        body = self._body()
        if isinstance(root, str) and not hasattr(self.s.store, "fs"):
            os.makedirs(root, exist_ok=True)
            try:
                fd = os.open(os.path.join(root, "LOCK"), os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                             0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as f:
                f.write(body)
            return True
        fs = self.s.store.fs  # type: ignore[attr-defined]
        path = self.s.store._path("LOCK")  # type: ignore[attr-defined]
        try:
            with fs.open(path, "xb") as f:  # a conditional put where the store has one
                f.write(body)
            return True
        except FileExistsError:
            return False
        except (ValueError, NotImplementedError, TypeError):
            if fs.exists(path):
                return False
            fs.pipe_file(path, body)
            return True

    def _break_if_stale(self) -> None:
        try:
            info = json.loads(self.s.get("LOCK"))
        except Exception:
            return
        if time.time() - float(info.get("time", 0)) > STALE_LOCK:
            self.s.store.delete("LOCK")

    def __enter__(self) -> _Lock:
        deadline = time.monotonic() + self.timeout
        while not self._try():
            self._break_if_stale()
            if time.monotonic() > deadline:
                raise StorageError(f"the checkpoint store {self.s.url} is locked by another "
                                   f"process (LOCK); gave up after {self.timeout:.0f} s. "
                                   "If no process is using it, delete the LOCK object.")
            time.sleep(0.05)
        self._beat = threading.Thread(target=self._heartbeat, daemon=True,
                                      name="hibernate-lock")
        self._beat.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        if self._ours():
            self.s.store.delete("LOCK")


# ---- reading and writing checkpoint manifests -------------------------------------------

def _encode(meta: dict[str, Any], manifest: Manifest) -> tuple[str, bytes]:
    body = json.dumps({"checkpoint": meta, "manifest": manifest.to_dict()},
                      separators=(",", ":"), ensure_ascii=False).encode()
    key = _trust.user_key()
    digest = hashlib.sha256(body).hexdigest()
    return digest[:16], MAGIC + key.id + key.sign(header_bytes() + body) + body


def _decode(data: bytes, where: str) -> tuple[dict[str, Any], Manifest]:
    if len(data) < len(MAGIC) + 48 or not data.startswith(MAGIC):
        raise FormatError(f"{where} is not a hibernate checkpoint")
    key_id, mac, body = data[8:24], data[24:56], data[56:]
    status = _trust.verify(key_id, mac, header_bytes() + body, _trust.user_keys())
    try:
        d = json.loads(body)
        meta = d["checkpoint"]
        manifest = Manifest.from_dict(d["manifest"])
    except (ValueError, KeyError, TypeError) as e:
        raise FormatError(f"{where}: malformed checkpoint ({e})") from None
    if not isinstance(meta, dict):
        raise FormatError(f"{where}: malformed checkpoint")
    if manifest.format_version > FORMAT_VERSION:
        raise VersionError(f"{where} is format version {manifest.format_version}; this "
                           f"hibernate reads up to {FORMAT_VERSION}: upgrade hibernate")
    return meta, replace(manifest, signature=status,
                         manifest_digest=hashlib.sha256(body).hexdigest())


def _full_id(s: _Store, cid: str) -> str:
    """The checkpoint id that ``cid`` (an id or a unique prefix of one) names."""
    if s.store.exists(f"checkpoints/{cid}.ckpt"):
        return cid
    matches = [i for i in s.ids() if i.startswith(cid)] if cid else []
    if len(matches) != 1:
        raise HibernateError(f"no checkpoint {cid!r} in {s.url}" if not matches else
                             f"checkpoint id {cid!r} is ambiguous: {matches}")
    return matches[0]


def _read(s: _Store, cid: str) -> tuple[dict[str, Any], Manifest]:
    cid = _full_id(s, cid)
    return _decode(s.get(f"checkpoints/{cid}.ckpt"), f"{s.url} checkpoint {cid}")


def _info(cid: str, meta: dict[str, Any], manifest: Manifest) -> Checkpoint:
    names = tuple(e.name for e in manifest.entries if e.kind != "skipped")
    return Checkpoint(cid, meta.get("parent"), str(meta.get("time")), str(meta.get("message")),
                      names, sum(b.length for b in manifest.blobs),
                      int(meta.get("bytes_written", 0)))


# ---- the public functions -----------------------------------------------------------------

def checkpoint(store: str | os.PathLike[str], namespace: dict[str, Any] | None = None, *,
               message: str | None = None, include: Iterable[str] | str | None = None,
               exclude: Iterable[str] | str | None = None,
               storage_options: dict[str, Any] | None = None) -> Checkpoint:
    """Record the session in ``store``, writing only the chunks the store does not have."""
    return record_session(store, _namespace(namespace), Selector(include, exclude), message,
                          storage_options)[0]


@dataclass
class Recorded:
    """What a checkpoint leaves for the next incremental one: its manifest, the id of each
    name's object then, what each name reached, and the store's prune generation then."""

    manifest: Manifest
    ids: dict[str, int]
    reach: dict[str, set[int]]
    generation: bytes | None


@dataclass
class Reuse:
    """An incremental checkpoint: the previous one, and the names cells may have touched."""

    previous: Recorded
    dirty: set[str]

    def expand(self, ns: dict[str, Any]) -> tuple[set[str], set[int]] | None:
        """The dirty names, grown by the session functions that touched values reach, and
        the ids of every object a dirty name reaches (or that a touched module holds).
        None when a full check is needed."""
        dirty = {n for n in self.dirty if n in ns}
        dirty_ids: set[int] = set()
        todo, done = list(dirty), set()
        while todo:
            name = todo.pop()
            if name in done:
                continue
            done.add(name)
            value = ns[name]
            if isinstance(value, types.ModuleType):  # mm.L.append(...) changes what z = mm.L
                dirty_ids.update(id(v) for v in vars(value).values())
                continue
            functions: list[types.FunctionType] = []
            try:
                dirty_ids |= identity_ids(value, ns, functions)
            except ReachesNamespace:
                return None
            for f in functions:  # handlers["go"]() runs g: what g uses is touched too
                for n in _global_names(f.__code__):
                    if n in ns and n not in dirty:
                        dirty.add(n)
                        todo.append(n)
        return dirty, dirty_ids

    def clean_groups(self, ns: dict[str, Any], dirty: set[str], dirty_ids: set[int]
                     ) -> list[Group]:
        """Groups none of whose names was touched, rebound, or reaches a touched object."""
        prev = self.previous
        return [g for g in prev.manifest.groups
                if all(n in ns and n not in dirty and prev.ids.get(n) == id(ns[n])
                       and n in prev.reach and not prev.reach[n] & dirty_ids
                       for n in g.names)]


def _global_names(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _global_names(const)


class _StaleReuse(Exception):
    """A prune ran since the previous checkpoint and removed chunks it would reuse."""


class _Except(Selector):
    def __init__(self, base: Selector, names: set[str]) -> None:
        self.include, self.exclude, self._base, self._names = base.include, base.exclude, \
            base, names

    def __call__(self, name: str) -> bool:
        return name not in self._names and self._base(name)


def record_session(store: str | os.PathLike[str], ns: dict[str, Any], select: Selector,
                   message: str | None, storage_options: dict[str, Any] | None = None,
                   reuse: Reuse | None = None) -> tuple[Checkpoint, Recorded]:
    """``checkpoint`` for a resolved namespace. With ``reuse``, the groups it finds clean are
    copied from the previous checkpoint instead of being serialized again."""
    if reuse is not None:
        try:
            return _record_session(store, ns, select, message, storage_options, reuse)
        except _StaleReuse:
            pass
    return _record_session(store, ns, select, message, storage_options, None)


def _record_session(store: str | os.PathLike[str], ns: dict[str, Any], select: Selector,
                    message: str | None, storage_options: dict[str, Any] | None,
                    reuse: Reuse | None) -> tuple[Checkpoint, Recorded]:
    s = _Store(store, storage_options)
    expanded = reuse.expand(ns) if reuse is not None else None
    clean = reuse.clean_groups(ns, *expanded) if reuse is not None and expanded else []
    clean_names = {n for g in clean for n in g.names}
    captured = capture(ns, _Except(select, clean_names) if clean_names else select,
                       hidden=ipython_hidden(ns))
    reach = dict(captured.reach)
    blobs: list[Blob] = []
    groups: list[Group] = []
    moved: dict[int, int] = {}
    for g in clean:
        assert reuse is not None
        ids = []
        for b in g.blobs:
            blobs.append(reuse.previous.manifest.blobs[b])
            ids.append(len(blobs) - 1)
        moved[g.id] = len(groups)
        groups.append(replace(g, id=len(groups), blobs=tuple(ids)))
        reach.update({n: reuse.previous.reach[n] for n in g.names})
    offset = len(groups)
    pieces: list[tuple[int, memoryview]] = []  # (blob index, chunk) in order
    first_new = next_blob = len(blobs)
    for cg in captured.groups:
        ids = []
        for buf in cg.dumped.buffers:
            view = memoryview(buf).cast("B")
            for start in range(0, max(len(view), 1), CHUNK_SIZE):
                pieces.append((next_blob, view[start:start + CHUNK_SIZE]))
            ids.append(next_blob)
            next_blob += 1
        ref = SerializerRef(cg.serializer.name, cg.serializer.version, cg.serializer.config())
        groups.append(Group(len(groups), cg.names, ref, cg.dumped.meta, tuple(ids)))
    with ThreadPoolExecutor(max_workers=4) as pool:
        digests = list(pool.map(lambda p: _sha256(p[1]), pieces))
    chunks: dict[int, list[Chunk]] = {}
    for (blob, piece), digest in zip(pieces, digests):
        chunks.setdefault(blob, []).append(Chunk(0, len(piece), len(piece), "raw", digest))
    blobs += [Blob(tuple(chunks[i])) for i in range(first_new, next_blob)]
    previous = ({e.name: e for e in reuse.previous.manifest.entries} if reuse is not None
                else {})
    entries = []
    for e in captured.entries:
        if e.name in clean_names:
            old = previous[e.name]
            entries.append(replace(old, group=moved[old.group] if old.group is not None
                                   else None))
        elif e.group is not None:
            entries.append(replace(e, group=e.group + offset))
        else:
            entries.append(e)
    manifest = Manifest(entries=tuple(entries), groups=tuple(groups), blobs=tuple(blobs),
                        session=session_info(entries))
    with s.lock():
        generation = s.get("PRUNED") if s.store.exists("PRUNED") else None
        if clean and reuse is not None and generation != reuse.previous.generation and any(
                not s.store.exists(s.object_key(c.digest))
                for b in blobs[:first_new] for c in b.chunks):
            raise _StaleReuse
        checkpoint = _record(s, manifest, message or "", _upload(s, pieces, digests))
    objects = {e.name: id(ns[e.name]) for e in entries if e.kind == "value" and e.name in ns}
    return checkpoint, Recorded(manifest, objects, reach, generation)


def _record(s: _Store, manifest: Manifest, message: str, written: int) -> Checkpoint:
    """Write a checkpoint manifest (its chunks are in the store) as HEAD's child; under the
    store's lock."""
    meta = {"parent": s.head(), "message": message, "bytes_written": written,
            "time": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="milliseconds")}
    cid, data = _encode(meta, manifest)
    s.put(f"checkpoints/{cid}.ckpt", data)
    s.put("HEAD", cid.encode())
    return _info(cid, meta, manifest)


def _upload(s: _Store, pieces: list[tuple[int, memoryview]], digests: list[str]) -> int:
    """Write the chunks the store lacks (each once); return the bytes written."""
    todo: dict[str, memoryview] = {}
    for (_, piece), digest in zip(pieces, digests):
        if digest not in todo and not s.store.exists(s.object_key(digest)):
            todo[digest] = piece
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda kv: s.put(s.object_key(kv[0]), kv[1]), todo.items()))
    return sum(len(p) for p in todo.values())


def log(store: str | os.PathLike[str], *, all: bool = False,
        storage_options: dict[str, Any] | None = None) -> list[Checkpoint]:
    """Checkpoints, newest first: the current line of history (HEAD and its ancestors), or
    every checkpoint in the store with ``all=True``."""
    s = _Store(store, storage_options)
    infos = {}
    for cid in s.ids():
        try:
            meta, manifest = _read(s, cid)
        except HibernateError:
            continue
        infos[cid] = _info(cid, meta, manifest)
    if all:
        return sorted(infos.values(), key=lambda c: c.time, reverse=True)
    line: list[Checkpoint] = []
    current = s.head()
    while current is not None and current in infos and len(line) <= len(infos):
        line.append(infos[current])
        current = infos[current].parent
    return line


def _chunk_reader(s: _Store, manifest: Manifest) -> Any:
    def read_blob(index: int) -> bytearray:
        blob = manifest.blobs[index]
        out = bytearray()
        for c in blob.chunks:
            try:
                data = s.get(s.object_key(c.digest))
            except StorageError as e:
                raise IntegrityError(f"chunk {c.digest[:12]} is missing from the store: {e}"
                                     ) from None
            if len(data) != c.raw or _sha256(memoryview(data)) != c.digest:
                raise IntegrityError(f"chunk {c.digest[:12]} does not match its digest")
            out += data
        return out
    return read_blob


def checkout(store: str | os.PathLike[str], id: str | None = None,
             namespace: dict[str, Any] | None = None, *, only_changed: bool = False,
             include: Iterable[str] | str | None = None,
             exclude: Iterable[str] | str | None = None, trust: bool = False,
             storage_options: dict[str, Any] | None = None) -> LoadReport:
    """Restore checkpoint ``id`` (default: the latest, HEAD) into ``namespace``, and make it
    the parent of the next checkpoint (a checkpoint after an older checkout starts a
    branch). ``only_changed``: leave in place the variables whose live value serializes to
    exactly what the checkpoint holds."""
    start = time.perf_counter()
    ns = _namespace(namespace)
    s = _Store(store, storage_options)
    wanted = id or s.head()
    if wanted is None:
        raise HibernateError(f"{s.url} has no checkpoints")
    cid = _full_id(s, wanted)
    meta, manifest = _read(s, cid)
    trusted = trust or manifest.signature == _trust.SignatureStatus.VALID or _trust.is_trusted(
        manifest.manifest_digest)
    keep = _unchanged(ns, manifest) if only_changed else frozenset()
    report = restore_manifest(manifest, _chunk_reader(s, manifest), ns,
                              Selector(include, exclude), trusted, False,
                              f"{s.url}@{cid}", start, keep)
    with s.lock():
        if s.store.exists(f"checkpoints/{cid}.ckpt"):  # not pruned meanwhile
            s.put("HEAD", cid.encode())
    return report


def _unchanged(ns: dict[str, Any], manifest: Manifest) -> frozenset[str]:
    """Names whose live group serializes to the checkpoint's very chunks."""
    names = [n for g in manifest.groups for n in g.names if n in ns]
    live = capture(ns, Selector(names, None), hidden=ipython_hidden(ns))
    live_digests = {cg.names: [_sha256(memoryview(b).cast("B")[i:i + CHUNK_SIZE])
                               for b in cg.dumped.buffers
                               for i in range(0, max(len(memoryview(b).cast("B")), 1),
                                              CHUNK_SIZE)]
                    for cg in live.groups}
    keep: set[str] = set()
    for g in manifest.groups:
        want = [c.digest for b in g.blobs for c in manifest.blobs[b].chunks]
        if live_digests.get(g.names) == want:
            keep.update(g.names)
    for e in manifest.entries:  # module and import references still bound to that object
        if e.kind in ("module", "import") and e.name in ns:
            try:
                if static_reference(e) is ns[e.name]:
                    keep.add(e.name)
            except NeedsCode:
                pass
    return frozenset(keep)


def _manifest_of(ref: str, s: _Store | None) -> Manifest:
    if s is not None:
        return _read(s, ref)[1]
    from ._api import inspect

    return inspect(ref)


def diff(a: str, b: str, *, store: str | os.PathLike[str] | None = None,
         storage_options: dict[str, Any] | None = None) -> Diff:
    """What changed from ``a`` to ``b``: two .hib paths, or two checkpoint ids in ``store``.
    A variable changed when its serialized bytes differ (compared by chunk digests)."""
    s = _Store(store, storage_options) if store is not None else None
    ma, mb = _manifest_of(a, s), _manifest_of(b, s)
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
        if e.kind == "skipped":
            continue
        if e.group is None:
            out[e.name] = (e.kind, e.module or "", e.qualname or "")
        else:
            g = groups[e.group]
            out[e.name] = tuple(c.digest for b in g.blobs for c in m.blobs[b].chunks)
    return out


def _sizes(m: Manifest) -> dict[str, int]:
    return {e.name: e.size for e in m.entries}


def export_checkpoint(store: str | os.PathLike[str], id: str, path: str | os.PathLike[str], *,
                      storage_options: dict[str, Any] | None = None) -> None:
    """Write checkpoint ``id`` as a standalone .hib file with the same chunk digests."""
    from ._format import FileWriter

    s = _Store(store, storage_options)
    _, manifest = _read(s, id)
    target, name = resolve(path)
    out = target.open_write(name)
    try:
        writer = FileWriter(out, digest="sha256")  # the store's digests, kept as they are
        for blob in manifest.blobs:
            pieces = [s.get(s.object_key(c.digest)) for c in blob.chunks]
            for c, p in zip(blob.chunks, pieces):
                if _sha256(memoryview(p)) != c.digest:
                    raise IntegrityError(f"chunk {c.digest[:12]} does not match its digest")
            writer.add_chunks(pieces)
        writer.finish(replace(manifest, blobs=writer.blobs), _trust.user_key())
    except BaseException:
        out.discard()
        raise


def import_checkpoint(path: str | os.PathLike[str], store: str | os.PathLike[str], *,
                      message: str | None = None,
                      storage_options: dict[str, Any] | None = None) -> Checkpoint:
    """Add a .hib file to ``store`` as a checkpoint (same chunk digests), child of HEAD."""
    from ._format import BlobReader

    src_store, name = resolve(path)
    s = _Store(store, storage_options)
    with src_store.open_read(name) as src:
        manifest = read_manifest(src, _trust.user_keys())
        if manifest.signature != _trust.SignatureStatus.VALID and not _trust.is_trusted(
                manifest.manifest_digest):
            raise HibernateError(f"{path} is not signed with your key: trust it first "
                                 "(`hibernate trust FILE`) to import it into your store")
        reader = BlobReader(src, manifest)
        blobs = []
        with s.lock():
            written = 0
            for i, blob in enumerate(manifest.blobs):
                data = memoryview(reader.read(i))
                pos = 0
                chunks = []
                for c in blob.chunks:
                    piece = data[pos:pos + c.raw]
                    # the store addresses chunks by SHA-256; a BLAKE3 file's are re-digested
                    digest = c.digest if manifest.digest == "sha256" else _sha256(piece)
                    if not s.store.exists(s.object_key(digest)):
                        s.put(s.object_key(digest), piece)
                        written += c.raw
                    chunks.append(Chunk(0, c.raw, c.raw, "raw", digest))
                    pos += c.raw
                blobs.append(Blob(tuple(chunks)))
            return _record(s, replace(manifest, blobs=tuple(blobs), digest="sha256"),
                           message or f"imported {os.fspath(path)}", written)


def prune(store: str | os.PathLike[str], *, keep_last: int | None = None,
          keep_within: datetime.timedelta | None = None,
          storage_options: dict[str, Any] | None = None) -> list[str]:
    """Remove checkpoints not kept, then every chunk no kept checkpoint needs (under the
    store's lock). Kept: HEAD, the ``keep_last`` newest, those newer than ``keep_within``.
    Returns the removed checkpoint ids."""
    s = _Store(store, storage_options)
    with s.lock():
        every = log(store, all=True, storage_options=storage_options)
        now = datetime.datetime.now(datetime.timezone.utc)
        head = s.head()
        kept = {c.id for c in every[:keep_last or 0]} | ({head} if head else set())
        if keep_within is not None:
            kept |= {c.id for c in every
                     if now - datetime.datetime.fromisoformat(c.time) <= keep_within}
        if keep_last is None and keep_within is None:
            kept = {c.id for c in every}
        unreadable = sorted(set(s.ids()) - {c.id for c in every})
        if unreadable:
            raise HibernateError(f"cannot prune {s.url}: checkpoint(s) {unreadable} cannot be "
                                 "read (made by a newer hibernate, or damaged); their chunks "
                                 "might be deleted")
        removed = [c.id for c in every if c.id not in kept]
        for cid in removed:
            s.store.delete(f"checkpoints/{cid}.ckpt")
        needed = set()
        for cid in kept:
            _, manifest = _read(s, cid)
            needed |= {c.digest for b in manifest.blobs for c in b.chunks}
        for key in list(s.store.list("objects/")):
            digest = key.replace("objects/", "").replace("/", "")
            if digest not in needed:
                s.store.delete(key)
        s.put("PRUNED", str(time.time_ns()).encode())  # reused chunks may be gone: see Reuse
    return removed

