"""The manifest: a hibernate file's metadata, as frozen dataclasses.

The manifest is UTF-8 JSON. It names every entry (variable) of the saved session, how it
was saved, and where its bytes are. It is read without unpickling or importing anything,
so ``from_dict`` validates every field and raises ``FormatError`` on anything malformed.

Non-goals: no values live here, only their descriptions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..errors import FormatError
from ._kinds import FEATURES, How, Kind

__all__ = [
    "FORMAT_VERSION",
    "MAX_MANIFEST_BYTES",
    "Blob",
    "Chunk",
    "Entry",
    "Group",
    "Manifest",
    "SerializerRef",
    "Skip",
    "canonical_bytes",
]

FORMAT_VERSION = 2
MAX_MANIFEST_BYTES = 64 << 20

# Entry kinds (kept as names for brevity; they are the Kind enum's members).
MODULE, IMPORT, VALUE, SKIPPED = Kind.MODULE, Kind.IMPORT, Kind.VALUE, Kind.SKIPPED

T = TypeVar("T")


def _get(d: Mapping[str, Any], key: str, typ: type[T] | tuple[type, ...], where: str) -> T:
    """Return ``d[key]`` if it has type ``typ``; else raise FormatError naming the field."""
    if not isinstance(d, Mapping):
        raise FormatError(f"manifest: {where} is not an object")
    if key not in d:
        raise FormatError(f"manifest: {where} has no field {key!r}")
    value = d[key]
    if not isinstance(value, typ) or (isinstance(value, bool) and typ is int):
        raise FormatError(f"manifest: {where}.{key} has the wrong type")
    return value  # type: ignore[return-value]


def _opt(d: Mapping[str, Any], key: str, typ: type[T] | tuple[type, ...], where: str) -> T | None:
    return None if d.get(key) is None else _get(d, key, typ, where)


def _nonneg(value: int, what: str) -> int:
    if value < 0:
        raise FormatError(f"manifest: {what} is negative")
    return value


@dataclass(frozen=True, slots=True)
class Skip:
    """Why an entry was not saved (or not loaded): a short code and a readable message."""

    code: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Skip:
        return cls(_get(d, "code", str, "skip"), _get(d, "message", str, "skip"))


@dataclass(frozen=True, slots=True)
class Chunk:
    """A bounded run of a blob's bytes: where it is, its lengths, codec and digest."""

    offset: int
    raw: int
    stored: int
    codec: str
    digest: str

    def to_dict(self) -> dict[str, Any]:
        return {"offset": self.offset, "raw": self.raw, "stored": self.stored,
                "codec": self.codec, "digest": self.digest}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Chunk:
        w = "chunk"
        return cls(_nonneg(_get(d, "offset", int, w), "chunk offset"),
                   _nonneg(_get(d, "raw", int, w), "chunk length"),
                   _nonneg(_get(d, "stored", int, w), "chunk length"),
                   _get(d, "codec", str, w), _get(d, "digest", str, w))


@dataclass(frozen=True, slots=True)
class Blob:
    """One buffer of bytes (a pickle stream or an out-of-band buffer) as a list of chunks."""

    chunks: tuple[Chunk, ...]

    @property
    def length(self) -> int:
        return sum(c.raw for c in self.chunks)

    @property
    def stored(self) -> int:
        return sum(c.stored for c in self.chunks)

    def to_dict(self) -> dict[str, Any]:
        return {"chunks": [c.to_dict() for c in self.chunks]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Blob:
        return cls(tuple(Chunk.from_dict(c) for c in _get(d, "chunks", list, "blob")))


@dataclass(frozen=True, slots=True)
class SerializerRef:
    """Which serializer wrote a group: name, version and its configuration."""

    name: str
    version: int
    config: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "config": dict(self.config)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SerializerRef:
        w = "serializer"
        return cls(_get(d, "name", str, w), _get(d, "version", int, w),
                   _get(d, "config", dict, w))


@dataclass(frozen=True, slots=True)
class Group:
    """Variables saved together (they share objects); each loads or fails as one."""

    id: int
    names: tuple[str, ...]
    serializer: SerializerRef
    meta: Mapping[str, Any]
    blobs: tuple[int, ...]
    placeholders: tuple[Skip, ...] = ()  # what inside the group was stored as a Placeholder

    def to_dict(self) -> dict[str, Any]:
        d = {"id": self.id, "names": list(self.names), "serializer": self.serializer.to_dict(),
             "meta": dict(self.meta), "blobs": list(self.blobs)}
        if self.placeholders:
            d["placeholders"] = [p.to_dict() for p in self.placeholders]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Group:
        w = "group"
        names = _get(d, "names", list, w)
        blobs = _get(d, "blobs", list, w)
        if not all(isinstance(n, str) for n in names) or not all(
            isinstance(b, int) and b >= 0 for b in blobs
        ):
            raise FormatError("manifest: group names or blobs are malformed")
        lost = _opt(d, "placeholders", list, w) or []
        return cls(_get(d, "id", int, w), tuple(names),
                   SerializerRef.from_dict(_get(d, "serializer", dict, w)),
                   _get(d, "meta", dict, w), tuple(blobs),
                   tuple(Skip.from_dict(p) for p in lost))


_ENTRY_FIELDS = frozenset({"name", "kind", "how", "type", "size", "group", "module",
                           "qualname", "shape", "dtype", "skip"})
_MANIFEST_FIELDS = frozenset({"format_version", "digest", "features", "session", "entries",
                              "groups", "blobs"})


@dataclass(frozen=True, slots=True)
class Entry:
    """One name of the saved namespace and how it was saved (never its value)."""

    name: str
    kind: str
    type_name: str
    size: int = 0
    group: int | None = None
    module: str | None = None
    qualname: str | None = None
    shape: tuple[int, ...] | None = None
    dtype: str | None = None
    skip: Skip | None = None
    how: How = How.STORED
    # fields this version does not define, kept as they were (later versions add what an
    # entry needs to come back: recorded cells, engine data; a feature bit says when a
    # reader must understand them)
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def needs_code(self) -> bool:
        """True when restoring this entry means unpickling (running code from the file)."""
        return self.kind == VALUE and self.how != How.ENGINE  # engine data: Parquet, .npy

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "kind": str(self.kind),
                             "how": str(self.how), "type": self.type_name, "size": self.size}
        for key in ("group", "module", "qualname", "dtype"):
            if getattr(self, key) is not None:
                d[key] = getattr(self, key)
        if self.shape is not None:
            d["shape"] = list(self.shape)
        if self.skip is not None:
            d["skip"] = self.skip.to_dict()
        return {**self.extra, **d}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Entry:
        w = "entry"
        kind = _get(d, "kind", str, w)
        if kind not in Kind.__members__.values():
            raise FormatError(f"manifest: unknown entry kind {kind!r}")
        how = _opt(d, "how", str, w)
        if how is not None and how not in How.__members__.values():
            raise FormatError(f"manifest: unknown way back {how!r} (a newer hibernate wrote "
                              "this entry)")
        shape = _opt(d, "shape", list, w)
        if shape is not None and not all(isinstance(n, int) for n in shape):
            raise FormatError("manifest: entry shape is malformed")
        skip = _opt(d, "skip", dict, w)
        entry = cls(
            name=_get(d, "name", str, w), kind=Kind(kind),
            how=How.of_kind(kind) if how is None else How(how),
            type_name=_get(d, "type", str, w),
            size=_get(d, "size", int, w), group=_opt(d, "group", int, w),
            module=_opt(d, "module", str, w), qualname=_opt(d, "qualname", str, w),
            shape=None if shape is None else tuple(shape), dtype=_opt(d, "dtype", str, w),
            skip=None if skip is None else Skip.from_dict(skip),
            extra={k: v for k, v in d.items() if k not in _ENTRY_FIELDS},
        )
        if kind == VALUE and entry.group is None and entry.how != How.ENGINE:
            raise FormatError(f"manifest: value entry {entry.name!r} has no group")
        if entry.how == How.ENGINE and not isinstance(entry.extra.get("engine"), dict):
            raise FormatError(f"manifest: engine entry {entry.name!r} has no engine record")
        if kind in (MODULE, IMPORT) and entry.module is None:
            raise FormatError(f"manifest: reference entry {entry.name!r} has no module")
        return entry


@dataclass(frozen=True, slots=True)
class Manifest:
    """Everything a hibernate file (or checkpoint) says about itself, read without running
    any code. The fields after ``features`` are set by the reader, not stored."""

    entries: tuple[Entry, ...]
    groups: tuple[Group, ...]
    blobs: tuple[Blob, ...]
    session: Mapping[str, Any]
    format_version: int = FORMAT_VERSION
    digest: str = "sha256"
    features: tuple[str, ...] = ()
    # top-level sections this version does not define, kept as they were (room for the
    # session's environment, recorded cells, engine data: see docs/format.md)
    sections: Mapping[str, Any] = field(default_factory=dict)
    path: str | None = field(default=None, compare=False)
    signature: str = field(default="unsigned", compare=False)
    manifest_digest: str = field(default="", compare=False)  # hex SHA-256 (trust list key)
    key_id: str = field(default="", compare=False)           # hex, of the signing key
    mac: str = field(default="", compare=False)              # hex, the signature itself

    def entry(self, name: str) -> Entry:
        for e in self.entries:
            if e.name == name:
                return e
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        d = {"format_version": self.format_version, "digest": self.digest,
             "session": dict(self.session),
             "entries": [e.to_dict() for e in self.entries],
             "groups": [g.to_dict() for g in self.groups],
             "blobs": [b.to_dict() for b in self.blobs]}
        if self.format_version >= 2:
            d["features"] = sorted(self.features)
        return {**self.sections, **d}

    def to_json(self) -> bytes:
        try:
            return json.dumps(self.to_dict(), separators=(",", ":"),
                              ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise FormatError("manifest holds text that is not valid Unicode (an undecodable "
                              "file name?)") from None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Manifest:
        w = "manifest"
        features = _opt(d, "features", list, w) or []
        if not all(isinstance(f, str) for f in features):
            raise FormatError("manifest: features are malformed")
        m = cls(
            entries=tuple(Entry.from_dict(e) for e in _get(d, "entries", list, w)),
            groups=tuple(Group.from_dict(g) for g in _get(d, "groups", list, w)),
            blobs=tuple(Blob.from_dict(b) for b in _get(d, "blobs", list, w)),
            session=_get(d, "session", dict, w),
            format_version=_get(d, "format_version", int, w),
            digest=_get(d, "digest", str, w),
            features=tuple(features),
            sections={k: v for k, v in d.items() if k not in _MANIFEST_FIELDS},
        )
        m._check_references()
        return m

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        return cls.from_dict(parse_json(data))

    def _check_references(self) -> None:
        group_ids = {g.id for g in self.groups}
        if len(group_ids) != len(self.groups):
            raise FormatError("manifest: duplicate group ids")
        for g in self.groups:
            if any(b >= len(self.blobs) for b in g.blobs):
                raise FormatError(f"manifest: group {g.id} names a blob that does not exist")
        for e in self.entries:
            if e.group is not None and e.group not in group_ids:
                raise FormatError(f"manifest: entry {e.name!r} names a missing group")


# What parsing may cost, as a multiple of the manifest's size (plus a fixed allowance, so
# that small manifests are never refused): the estimate below is an upper bound of the
# memory Python's JSON parser allocates; real manifests stay near 9, a hand-built one of
# empty containers or short strings would reach 25 and more.
MAX_PARSE_COST = 12
PARSE_ALLOWANCE = 4 << 20


def parse_cost(data: bytes) -> int:
    """An upper bound, in bytes, of the memory that parsing ``data`` as JSON allocates, from
    counts of its structural bytes (C speed, no parse): every value is a pointer and an
    object (numbers up to 32 bytes, containers 56 to 64, strings about 50 plus their text),
    keys are shared by the parser and cost nothing more. Bytes inside strings only raise
    the estimate, and an escaped quote followed by a colon is never taken for a key."""
    values = data.count(b",") + data.count(b"]") + data.count(b"}")
    containers = data.count(b"{") + data.count(b"[")
    keys = data.count(b'":') - data.count(b'\\":')
    strings = max(data.count(b'"') // 2 - keys, 0)
    return 2 * len(data) + 48 * values + 64 * containers + 56 * strings


def parse_json(data: bytes) -> dict[str, Any]:
    cost = parse_cost(data)
    if cost > MAX_PARSE_COST * len(data) + PARSE_ALLOWANCE:
        raise FormatError(f"the manifest ({len(data)} bytes) is built to take "
                          f"{cost / max(len(data), 1):.0f} times its size in memory to read "
                          f"(the limit is {MAX_PARSE_COST}): it was not written by hibernate")
    try:
        d = json.loads(bytes(data).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise FormatError(f"manifest is not valid UTF-8 JSON: {e}") from None
    if not isinstance(d, dict):
        raise FormatError("manifest: not an object")
    return d


def canonical_bytes(d: Mapping[str, Any], *, consume: bool = False) -> bytes:
    """The form of a (checked) manifest that signatures and the trust list cover: every
    field as written, except where each chunk's bytes happen to lie and how they are encoded
    (offset, stored length, codec). A chunk's content is covered by its raw length and
    digest, so a checkpoint exported to a file, or a file imported into a store, keeps its
    signature; keys are sorted and the JSON compact, so it is independent of who wrote it."""
    body = dict(d)
    if consume:  # ``d`` is not used again: leave the located fields out in place, no copy
        for b in d["blobs"]:
            for c in b["chunks"]:
                raw, digest = c["raw"], c["digest"]
                c.clear()
                c.update(raw=raw, digest=digest)
    else:
        body["blobs"] = [{"chunks": [{"raw": c["raw"], "digest": c["digest"]}
                                     for c in b["chunks"]]} for b in d["blobs"]]
    try:
        return json.dumps(body, sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False).encode()
    except UnicodeEncodeError:  # a "\ud800" escape: JSON allows it, Unicode does not
        raise FormatError("manifest holds text that is not valid Unicode") from None


def known_feature_bits() -> int:
    return sum(bit for bit, _ in FEATURES.values())
