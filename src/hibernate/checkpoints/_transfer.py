"""Copies between a checkpoint store and ``.hib`` files: ``export_checkpoint`` (and the CLI's
``checkout --output``) and ``import_checkpoint``.

Both copy chunks as they are stored (compressed or not) and the manifest as it is: nothing
is serialized again, every chunk's digest is checked on the way, and the copy carries the
signature the original had (format v2 signs a canonical form that leaves out where chunks
lie), or none. Only a copy whose manifest must change (a format-v1 original, or a file
digested with SHA-256 going into a BLAKE3 store) is signed afresh, and only if the user's
own key signed the original (``trust.may_sign``).
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

from ..engines import Location
from ..format import (
    Blob,
    BlobReader,
    ChunkWriter,
    FileSink,
    FileSource,
    How,
    Manifest,
    features_for,
    header_bytes,
    is_own,
    read_file_manifest,
    verify_chunk,
)
from ..session._engines import copy_engine_data
from ..storage import resolve
from ..trust import user_keys
from ._cas import StoreSink, StoreSource, known_chunks
from ._history import Checkpoint, info
from ._record import engine_location, store_digest, store_features
from ._repo import Repo, reseal

__all__ = ["export_checkpoint", "import_checkpoint", "upgraded"]



def upgraded(m: Manifest, features: tuple[str, ...]) -> Manifest:
    """A format-v1 manifest as format v2 (every entry says how it comes back)."""
    if m.format_version >= 2:
        return m
    entries = tuple(replace(e, how=How.of_kind(e.kind)) for e in m.entries)
    return replace(m, entries=entries, format_version=2, features=features)


def export_checkpoint(store: str | os.PathLike[str], id: str, path: str | os.PathLike[str], *,
                      storage_options: dict[str, Any] | None = None) -> str:
    """Write checkpoint ``id`` as a standalone .hib file: the same chunks, the same
    manifest, the same signature (or none). Returns the checkpoint's full id."""
    repo = Repo(store, storage_options)
    cid = repo.full_id(id)
    _, manifest = repo.read(cid)
    source = StoreSource(repo.store, legacy=manifest.format_version < 2)
    if not is_own(manifest):  # the file would be refused: refuse it here
        source.check_expansion(manifest.blobs)
    copy = upgraded(manifest, features_for(manifest.digest, "raw"))
    target, name = resolve(path, storage_options if "://" in os.fspath(path) else None)
    file_options = storage_options if "://" in os.fspath(path) else None
    copied: list[str] = []
    out = target.open_write(name)
    try:
        # engine data first, beside the file: the file is published only once it is there
        copied = copy_engine_data(manifest.entries, engine_location(repo),
                                  Location.beside(path, file_options))
        sink = FileSink(out, header_bytes(copy.features))
        blobs = []
        for blob in manifest.blobs:
            chunks = []
            for c in blob.chunks:
                stored = source.read_chunk(c)
                verify_chunk(c, stored, manifest.digest)
                chunks.append(sink.put(c.digest, c.raw, stored, c.codec))
            blobs.append(Blob(tuple(chunks)))
        copy = replace(copy, blobs=tuple(blobs))
        sink.finish(copy, reseal(manifest, copy))
    except BaseException:
        out.discard()
        for prefix in copied:
            Location.beside(path, file_options).remove(prefix)
        raise
    return cid


def import_checkpoint(path: str | os.PathLike[str], store: str | os.PathLike[str], *,
                      message: str | None = None,
                      storage_options: dict[str, Any] | None = None) -> Checkpoint:
    """Add a .hib file to ``store`` as a checkpoint, child of HEAD. Its chunks are copied as
    they are (those the store has are not written again); it keeps its signature, so a file
    nobody trusted stays untrusted in the store."""
    src_store, name = resolve(path, storage_options if "://" in os.fspath(path) else None)
    repo = Repo(store, storage_options)
    with src_store.open_read(name) as src, repo.lock():
        manifest = read_file_manifest(src, user_keys())
        sink = StoreSink(repo.store, known_chunks(repo.store, repo.generation()))
        copied: list[str] = []
        try:
            copied = copy_engine_data(
                manifest.entries, Location.beside(
                    path, storage_options if "://" in os.fspath(path) else None),
                engine_location(repo))
            if manifest.digest == store_digest():
                blobs = tuple(Blob(tuple(_copy_chunk(c, src, sink, manifest.digest)
                                         for c in b.chunks)) for b in manifest.blobs)
            else:  # digested otherwise: the same bytes, chunked and digested again
                writer = ChunkWriter(sink, digest=store_digest())
                reader = BlobReader(FileSource(src), manifest.blobs, manifest.digest,
                                    own=is_own(manifest))
                for i in range(len(manifest.blobs)):
                    writer.add_blob(reader.read(i))
                blobs = writer.blobs
            sink.flush()
        except BaseException:
            sink.rewind(0)
            for prefix in copied:
                engine_location(repo).remove(prefix)
            raise
        finally:
            sink.close()
        features = store_features(store_digest(), blobs, engines=bool(copied))
        copy = replace(upgraded(manifest, features), blobs=blobs)
        if manifest.digest != store_digest():
            copy = replace(copy, digest=store_digest(), features=features)
        cid, meta = repo.write(copy, reseal(manifest, copy),
                               {"message": message or f"imported {os.fspath(path)}",
                                "bytes_written": sink.bytes_written})
    return info(cid, meta, copy)


def _copy_chunk(c: Any, src: Any, sink: StoreSink, digest: str) -> Any:
    known = sink.known(c.digest, c.raw)
    if known is not None:
        return known
    stored = src.read(c.offset, c.stored)
    verify_chunk(c, stored, digest)
    return sink.put(c.digest, c.raw, stored, c.codec)
