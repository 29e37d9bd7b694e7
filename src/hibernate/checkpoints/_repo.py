"""A checkpoint store's small objects: HEAD, the prune generation, and checkpoint records.

Layout (beside the chunks, see _cas.py)::

    checkpoints/<id>.ckpt  one record per checkpoint, written last
    HEAD                   the id the next checkpoint's parent is (moved by checkout)
    LOCK                   held while a checkpoint is written or a prune runs (_lock.py)
    PRUNED                 changes whenever a prune deletes chunks

A record (format v2) is ``b"HIBCKPT2"``, the key id and HMAC of the user who wrote it (over
the JSON that follows, so its parent, time and message are theirs), and the JSON
``{"checkpoint": {...}, "manifest": {...}, "seal": {"key_id", "mac"}}``. The manifest has
a file manifest's schema, chunk offsets 0; ``seal`` is the manifest's own signature over its
canonical form: the same bytes a ``.hib`` file's trailer carries, so an exported checkpoint
keeps it, and an imported file keeps the signature it came with (or none). The id is the
first 16 hex digits of the SHA-256 of the JSON. Records of format-v1 stores
(``b"HIBCKPT1"``) are still read.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
from dataclasses import replace
from typing import Any

from ..errors import FormatError, HibernateError
from ..format import (
    HEADER_V1,
    MAGIC,
    Manifest,
    canonical_bytes,
    header_bytes,
    parse_json,
    seal_of,
    signed_message,
)
from ..format._file import check_manifest
from ..storage import Store, resolve
from ..trust import _keys, may_sign
from ._lock import Lock

__all__ = ["Repo", "decode", "encode", "reseal"]

_ID = re.compile(r"[0-9a-f]{16}\Z")
_PREFIX = re.compile(r"[0-9a-f]{1,16}\Z")
RECORD_MAGIC = b"HIBCKPT2"
LEGACY_MAGIC = b"HIBCKPT1"
RECORD_PREFIX = b"hibernate checkpoint v2\0"


class Repo:
    """One checkpoint store: its Store and URL, and its small objects."""

    def __init__(self, url: str | os.PathLike[str],
                 storage_options: dict[str, Any] | None) -> None:
        root = os.fspath(url).rstrip("/") + "/"
        store, _ = resolve(root + "x", storage_options)
        self.store: Store = store
        self.url = os.fspath(url)
        self.storage_options = dict(storage_options or {})

    def get(self, key: str) -> bytes:
        return self.store.get(key)

    def head(self) -> str | None:
        if not self.store.exists("HEAD"):
            return None
        cid = self.get("HEAD").decode("ascii", "replace").strip()
        if not _ID.match(cid):
            raise FormatError(f"{self.url}: HEAD does not name a checkpoint id")
        return cid

    def set_head(self, cid: str) -> None:
        self.store.put("HEAD", cid.encode())

    def generation(self) -> bytes | None:
        return self.get("PRUNED") if self.store.exists("PRUNED") else None

    def ids(self) -> list[str]:
        found = (k.split("/")[-1][:-5] for k in self.store.list("checkpoints/")
                 if k.endswith(".ckpt") and k.count("/") == 1)
        return [cid for cid in found if _ID.match(cid)]

    def exists(self, cid: str) -> bool:
        return self.store.exists(f"checkpoints/{cid}.ckpt")

    def lock(self, timeout: float | None = None) -> Lock:
        return Lock(self.store, self.url, timeout)

    def full_id(self, cid: str) -> str:
        """The checkpoint id that ``cid`` (an id or a unique prefix of one) names."""
        if not _PREFIX.match(cid):
            raise HibernateError(f"{cid!r} is not a checkpoint id (hex digits)")
        if len(cid) == 16 and self.exists(cid):
            return cid
        matches = [i for i in self.ids() if i.startswith(cid)] if cid else []
        if len(matches) != 1:
            raise HibernateError(f"no checkpoint {cid!r} in {self.url}" if not matches else
                                 f"checkpoint id {cid!r} is ambiguous: {matches}")
        return matches[0]

    def read(self, cid: str) -> tuple[dict[str, Any], Manifest]:
        """A checkpoint's record: (its meta, its checked manifest)."""
        cid = self.full_id(cid)
        return decode(self.get(f"checkpoints/{cid}.ckpt"), f"{self.url} checkpoint {cid}")

    def write(self, manifest: Manifest, seal: tuple[bytes, bytes] | None,
              meta: dict[str, Any], d: dict[str, Any] | None = None
              ) -> tuple[str, dict[str, Any]]:
        """Write a record (its chunks are in the store) as HEAD's child; under the lock.
        ``d``: the manifest's ``to_dict()``, where the caller has it already."""
        meta = {"parent": self.head(), **meta,
                "time": datetime.datetime.now(datetime.timezone.utc).isoformat(
                    timespec="milliseconds")}
        cid, data = encode(meta, manifest, seal, d)
        self.store.put(f"checkpoints/{cid}.ckpt", data)
        self.set_head(cid)
        return cid, meta


def encode(meta: dict[str, Any], manifest: Manifest, seal: tuple[bytes, bytes] | None,
           d: dict[str, Any] | None = None) -> tuple[str, bytes]:
    key_id, mac = seal or (bytes(16), bytes(32))
    body = json.dumps({"checkpoint": meta, "manifest": manifest.to_dict() if d is None else d,
                       "seal": {"key_id": key_id.hex(), "mac": mac.hex()}},
                      separators=(",", ":"), ensure_ascii=False).encode()
    record_id, record_mac = _keys.seal(RECORD_PREFIX + body)
    return hashlib.sha256(body).hexdigest()[:16], RECORD_MAGIC + record_id + record_mac + body


def decode(data: bytes, where: str) -> tuple[dict[str, Any], Manifest]:
    if data.startswith(LEGACY_MAGIC):
        return _decode_legacy(data, where)
    if len(data) < len(RECORD_MAGIC) + 48 or not data.startswith(RECORD_MAGIC):
        if data[:7] == RECORD_MAGIC[:7]:
            raise _newer(where)
        raise FormatError(f"{where} is not a hibernate checkpoint")
    key_id, mac, body = data[8:24], data[24:56], data[56:]
    _keys.verify(key_id, mac, RECORD_PREFIX + body, _keys.user_keys())  # raises if tampered
    d = parse_json(body)
    meta, m, seal = d.get("checkpoint"), d.get("manifest"), d.get("seal")
    if not isinstance(meta, dict) or not isinstance(m, dict) or not isinstance(seal, dict):
        raise FormatError(f"{where}: malformed checkpoint")
    if isinstance(m.get("format_version"), int) and m["format_version"] > 2:
        raise _newer(where)
    try:
        manifest = Manifest.from_dict(m)
        check_manifest(manifest, 2, None)
        canonical = canonical_bytes(m)
        sk, smac = bytes.fromhex(str(seal["key_id"])), bytes.fromhex(str(seal["mac"]))
    except (KeyError, ValueError, TypeError) as e:
        raise FormatError(f"{where}: malformed checkpoint ({e})") from None
    if len(sk) != 16 or len(smac) != 32:
        raise FormatError(f"{where}: malformed signature")
    status = _keys.verify(sk, smac, signed_message(canonical, header_bytes(manifest.features)),
                          _keys.user_keys())
    return meta, replace(manifest, signature=status,
                         manifest_digest=hashlib.sha256(canonical).hexdigest(),
                         key_id=sk.hex() if any(sk) else "", mac=smac.hex() if any(smac) else "")


def _newer(where: str) -> HibernateError:
    from ..errors import VersionError

    return VersionError(f"{where} was written by a newer hibernate: upgrade hibernate to read it")


def _decode_legacy(data: bytes, where: str) -> tuple[dict[str, Any], Manifest]:
    """A format-v1 record: signed over the v1 file header and the JSON with the raw key."""
    if len(data) < len(LEGACY_MAGIC) + 48:
        raise FormatError(f"{where} is not a hibernate checkpoint")
    key_id, mac, body = data[8:24], data[24:56], data[56:]
    status = _keys.verify(key_id, mac, HEADER_V1.pack(MAGIC, 1, 0) + body, _keys.user_keys(),
                          legacy=True)
    d = parse_json(body)
    try:
        meta = d["checkpoint"]
        manifest = Manifest.from_dict(d["manifest"])
    except (KeyError, TypeError) as e:
        raise FormatError(f"{where}: malformed checkpoint ({e})") from None
    if not isinstance(meta, dict):
        raise FormatError(f"{where}: malformed checkpoint")
    if manifest.format_version != 1:
        raise FormatError(f"{where}: a v1 record holds a format {manifest.format_version} "
                          "manifest")
    check_manifest(manifest, 1, None)
    return meta, replace(manifest, signature=status,
                         manifest_digest=hashlib.sha256(body).hexdigest())


def reseal(original: Manifest, copy: Manifest) -> tuple[bytes, bytes] | None:
    """The signature a copy of ``original`` carries (an export, an import, a checkout to a
    file): the original's own when it covers the copy unchanged (format v2: the canonical
    form leaves out where chunks lie), else a fresh one only if the user's own key signed the
    original, else none. Nothing is signed that was not trusted by its signature."""
    if (original.format_version >= 2 and original.mac
            and canonical_bytes(original.to_dict()) == canonical_bytes(copy.to_dict())):
        return bytes.fromhex(original.key_id), bytes.fromhex(original.mac)
    return seal_of(copy) if may_sign(original) else None
