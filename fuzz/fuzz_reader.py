"""Fuzz hibernate's reader with hypothesis: damaged, spliced and re-wrapped files.

    python fuzz/fuzz_reader.py --minutes 10 [--seed N] [--out DIR]
    python fuzz/fuzz_reader.py --replay FILE.hib

Two valid files ("A" and "B": numpy arrays, a structured array pickled with an out-of-band
buffer, a list of dicts, a function, module and import references, shared objects, a skipped
generator) are mutated: bit flips, byte sets, truncation, insertions, deletions, ranges and
whole chunks of the other file spliced in, crossovers (A's head on B's tail), header fields
(version, feature bits, min-reader version) set, and manifests mutated as JSON (any node, or
the fields the manifest and its container must agree on: format_version, digest, features;
optionally with the header's feature bits set to match) or as raw bytes, and re-wrapped with
a valid trailer CRC and manifest digest (and a chosen trailer version): keeping the old
signature ("stale"), unsigned, with a foreign key, or re-signed with the user's key. Each
mutant goes through ``inspect`` (and printing its result), ``load(data_only=True)``,
``load(trust=True)``, a default ``load`` and ``open`` (every name), each into a fresh dict,
with a time budget. The oracle:

- only ``HibernateError`` subclasses escape; every load that returns binds exactly the names
  it reports as restored;
- a reference model of format v2 (v1 files are still read), written from the format's rules
  and not from hibernate's code, predicts the outcome of reading: the 32-byte header
  (VersionError for a newer version or unknown feature bits), the trailer (its version must
  be the header's), the manifest digest, JSON, the manifest against its container (manifest
  version, feature bits = the manifest's features, digest "blake3" <=> feature "blake3"),
  codecs and chunk spans, then the signature: an HMAC-SHA256, under a key derived from the
  user's key by scrypt, of b"hibernate manifest v2\\0" + header + the manifest's canonical
  form (chunk offsets, stored lengths and codecs left out, keys sorted). Inspect and every
  load raise exactly the predicted error class; FormatError is also allowed where the model
  cannot tell that the manifest passes the reader's schema (the schema is checked right
  after the JSON parse; manifests that differ from A's or B's only in fields the model
  checks itself are known to pass it). When nothing fails, inspect reports the predicted
  signature status and manifest digest (SHA-256 of the canonical form);
- when the manifest's canonical form is A's or B's, every value that is restored equals the
  original, identity between shared values holds, and, with ``trust=True``, exactly the
  entries whose chunks (wherever the mutant's manifest puts them, in its codec) no longer
  match their digests are in ``.failed`` (everything else is restored); a default load of a
  file not signed with the user's key raises UntrustedFileError.

Importable: ``run(seconds, workdir, seed)`` returns counts (tests/test_faults.py runs it for
about ten seconds). A failing input is written to ``<out>/crash-<digest>.hib``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import importlib.abc
import json
import os
import signal
import struct
import sys
import tempfile
import time
import types
import zlib
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HEADER_V1 = struct.Struct("<8sII")      # v1: magic, version, flags
HEADER_V2 = struct.Struct("<8sII16s")   # v2: magic, version, feature bits, min-reader version
MAGIC = b"\x89HIB\r\n\x1a\n"
TRAILER_MAGIC = b"\x89HIBEND\n"
BODY = struct.Struct("<QQ32s16s32sII12s")
HEADER_SIZE, TRAILER_SIZE = HEADER_V2.size, 128
MAX_MANIFEST = 64 << 20
MAX_CHUNK = 64 << 20
FORMAT_VERSION = 2
FEATURE_BITS = {"blake3": 1 << 0, "zstd": 1 << 1, "placeholders": 1 << 2, "engines": 1 << 3}
KNOWN_BITS = sum(FEATURE_BITS.values())
DIGEST_NAMES = ("sha256", "blake3")
CODEC_NAMES = ("raw", "zstd")
SIGNED_PREFIX = b"hibernate manifest v2\0"
KDF = {"n": 1 << 15, "r": 8, "p": 1, "maxmem": 64 << 20}  # v2 key derivation (scrypt)
KDF_SALT = b"hibernate signing key v2"
FUZZ_KEY = "68696265726e6174652d66757a7a2d6b65793f9c2a71d0e84b56"  # hex, as keys must be
EXAMPLE_BUDGET = 20.0  # seconds per mutant, for all its loads together


class Hang(BaseException):
    """Raised by the alarm when one mutant takes longer than EXAMPLE_BUDGET."""


class OracleFailure(AssertionError):
    pass


@contextmanager
def time_budget(seconds: float):  # type: ignore[no-untyped-def]
    def on_alarm(signum: int, frame: object) -> None:
        raise Hang(f"more than {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# ---------------------------------------------------------------------------------------
# the corpus


def _session_a() -> dict[str, Any]:
    import datetime
    from collections import OrderedDict

    import numpy as np

    rec = np.zeros(8_000, dtype=[("a", "<i4"), ("b", "<f8")])  # 96 KB: pickled, out of band
    rec["a"] = np.arange(8_000)
    rec["b"] = np.arange(8_000) / 7
    ns: dict[str, Any] = {
        "np": np,
        "OrderedDict": OrderedDict,
        "k": 7,
        "big": 2**70,
        "text": "h\u00e9llo\x00\u2603",
        "raw": b"\x00\xff" * 40,
        "when": datetime.date(2020, 1, 2),
        "arr": np.arange(20_000, dtype=np.float64),
        "mat": np.asfortranarray(np.arange(12, dtype=np.int32).reshape(3, 4)),
        "rec": rec,
        "rows": [{"id": i, "name": f"n{i}", "tags": [i, str(i)]} for i in range(500)],
        "shared": [1, 2],
        "gen": (x for x in range(0)),  # skipped: unpicklable
    }
    ns["holder"] = {"s": ns["shared"]}
    exec("def f(x, scale=3):\n    return [x * scale, 'f']\n", ns)
    del ns["__builtins__"]
    return ns


def _session_b() -> dict[str, Any]:
    import numpy as np

    ns: dict[str, Any] = {
        "k": 8,
        "text": "other",
        "arr": np.arange(20_000, dtype=np.float64) * 2,
        "ids": np.arange(30_000, dtype=np.int64),
        "rows": [{"id": -i, "name": f"m{i}"} for i in range(300)],
        "shared": [3],
    }
    ns["holder"] = {"s": ns["shared"]}
    exec("def f(x, scale=5):\n    return [x * scale, 'g']\n", ns)
    del ns["__builtins__"]
    return ns


def same(got: Any, exp: Any) -> bool:
    import numpy as np

    if isinstance(exp, np.ndarray):
        return (type(got) is type(exp) and got.dtype == exp.dtype and got.shape == exp.shape
                and got.flags.f_contiguous == exp.flags.f_contiguous
                and np.array_equal(got, exp))
    if isinstance(exp, types.FunctionType):
        return (isinstance(got, types.FunctionType) and got.__name__ == exp.__name__
                and got.__code__.co_code == exp.__code__.co_code
                and got.__defaults__ == exp.__defaults__ and got(2) == exp(2))
    if isinstance(exp, (types.ModuleType, type)):
        return got is exp
    return type(got) is type(exp) and bool(got == exp)


def chunk_digest(algorithm: str, data: bytes) -> str:
    """The oracle's own chunk digest (hashlib / the blake3 package, not hibernate's code)."""
    if algorithm == "blake3":
        import blake3

        return str(blake3.blake3(data).hexdigest())
    assert algorithm == "sha256", algorithm
    return hashlib.sha256(data).hexdigest()


def chunk_intact(algorithm: str, data: bytes, chunk: dict[str, Any]) -> bool:
    """Whether a (schema-checked) chunk's stored bytes, where its manifest puts them and in
    its codec, decode to its raw length and digest: the oracle's own decoding."""
    stored = data[chunk["offset"]:chunk["offset"] + chunk["stored"]]
    if len(stored) != chunk["stored"]:
        return False
    if chunk["codec"] == "raw":
        raw = stored
    else:
        assert chunk["codec"] == "zstd", chunk["codec"]
        import zstandard

        try:
            raw = zstandard.ZstdDecompressor().decompressobj().decompress(stored)
        except zstandard.ZstdError:
            return False
    return len(raw) == chunk["raw"] and chunk_digest(algorithm, raw) == str(chunk["digest"])


def canonical(tree: dict[str, Any]) -> bytes:
    """What a v2 signature and the manifest digest cover, by the format's rule: the parsed
    manifest with each chunk cut to its raw length and digest (where its bytes lie and how
    they are encoded are left out), keys sorted, compact JSON, UTF-8."""
    body = dict(tree)
    body["blobs"] = [{"chunks": [{"raw": c["raw"], "digest": c["digest"]} for c in b["chunks"]]}
                     for b in tree["blobs"]]
    return json.dumps(body, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


CHUNK_FIELDS = ("offset", "raw", "stored", "codec", "digest")


def skeleton(tree: dict[str, Any]) -> str:
    """The manifest without the fields the model checks itself (the top level's
    format_version, digest and features; each chunk's CHUNK_FIELDS), as sorted JSON. A
    mutant with an original's skeleton passes the reader's schema exactly when those
    fields are well typed."""
    body = {k: v for k, v in tree.items() if k not in ("format_version", "digest", "features")}
    blobs = tree.get("blobs")
    if isinstance(blobs, list) and all(
            isinstance(b, dict) and isinstance(b.get("chunks"), list)
            and all(isinstance(c, dict) for c in b["chunks"]) for b in blobs):
        body["blobs"] = [{**b, "chunks": [{k: v for k, v in c.items() if k not in CHUNK_FIELDS}
                                          for c in b["chunks"]]} for b in blobs]
    return json.dumps(body, sort_keys=True)


@dataclass
class CorpusFile:
    name: str
    data: bytes
    values: dict[str, Any]
    manifest: dict[str, Any]
    moff: int
    mlen: int
    digest: str  # hex SHA-256 of the manifest's canonical form (what inspect reports)
    loadable: frozenset[str]  # names of module/import/value entries
    groups: dict[int, tuple[frozenset[str], tuple[int, ...]]]  # id -> names, blob indices
    chunks: list[tuple[int, int]]  # (offset, length) of every chunk


def _corpus_file(name: str, path: Path, values: dict[str, Any]) -> CorpusFile:
    import hibernate

    hibernate.save(path, values)
    data = path.read_bytes()
    moff, mlen = struct.unpack_from("<QQ", data, len(data) - TRAILER_SIZE)
    m = json.loads(data[moff:moff + mlen])
    assert m["format_version"] == FORMAT_VERSION, m["format_version"]
    groups = {g["id"]: (frozenset(g["names"]), tuple(g["blobs"])) for g in m["groups"]}
    chunks = [(c["offset"], c["stored"]) for b in m["blobs"] for c in b["chunks"]]
    loadable = frozenset(e["name"] for e in m["entries"] if e["kind"] != "skipped")
    assert loadable == {n for n in values if n != "gen"}, loadable
    return CorpusFile(name, data, {n: v for n, v in values.items() if n in loadable}, m,
                      moff, mlen, hashlib.sha256(canonical(m)).hexdigest(), loadable,
                      groups, chunks)


# ---------------------------------------------------------------------------------------
# a reference model of the format (v2; v1 files are still read) and its reading order


@dataclass(frozen=True)
class Keys:
    """The user's key as the format uses it. v2: the MAC key and the key id are derived from
    it by scrypt (KDF, KDF_SALT); v1: the key itself, named by a SHA-256 of it."""

    secret: bytes  # what format 1 signed with: the variable's text
    mac_key: bytes
    key_id: bytes

    @classmethod
    def of(cls, text: bytes) -> Keys:
        """``HIBERNATE_KEY``'s text: the bytes its hex (else base64) spells are what the
        KDF takes; v1 used the text itself."""
        t = text.decode().strip()
        if all(ch in "0123456789abcdefABCDEF" for ch in t) and len(t) % 2 == 0:
            raw = bytes.fromhex(t)
        else:  # base64 or base64url, padding optional
            body = t.rstrip("=").replace("-", "+").replace("_", "/")
            raw = base64.b64decode(body + "=" * (-len(body) % 4))
        out = hashlib.scrypt(raw, salt=KDF_SALT, n=KDF["n"],
                             r=KDF["r"], p=KDF["p"], maxmem=KDF["maxmem"], dklen=48)
        return cls(text, out[:32], out[32:])

    def sign(self, header: bytes, canonical_manifest: bytes) -> bytes:
        return hmac.new(self.mac_key, SIGNED_PREFIX + header + canonical_manifest,
                        hashlib.sha256).digest()

    @property
    def legacy_id(self) -> bytes:
        return hashlib.sha256(b"hibernate-key-id\0" + self.secret).digest()[:16]

    def legacy_sign(self, header: bytes, manifest: bytes) -> bytes:
        return hmac.new(self.secret, header + manifest, hashlib.sha256).digest()


@dataclass
class Prediction:
    """What the format says reading a file gives. ``error``: the class name of the error the
    first failing check raises, or None. ``schema_unknown``: the manifest parsed, but the
    model cannot tell whether the reader's schema (checked before everything after the
    parse) holds, so a FormatError is allowed too. With no error, inspect reports
    ``signature`` and ``digest`` (hex); ``tree`` is the parsed manifest."""

    error: str | None
    schema_unknown: bool = False
    signature: str = ""
    digest: str = ""
    tree: dict[str, Any] | None = None

    def allows(self, error: BaseException) -> bool:
        name = type(error).__name__
        return name == self.error or (self.schema_unknown and name == "FormatError")

    def __str__(self) -> str:
        what = self.error or f"a {self.signature} file"
        return what + (" (or FormatError from the schema)" if self.schema_unknown else "")


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _typed(tree: dict[str, Any]) -> tuple[int, str, list[str], list[dict[str, Any]]] | None:
    """(format_version, digest, features, chunks) when those fields have the types the schema
    requires (features: absent, null or a list of strings; chunk offsets and lengths:
    non-negative integers), else None: the reader's schema rejects the manifest."""
    version: Any = tree.get("format_version")
    digest: Any = tree.get("digest")
    features: Any = tree.get("features")
    features = [] if features is None else features
    blobs = tree.get("blobs")
    if not (_int(version) and isinstance(digest, str) and isinstance(features, list)
            and all(isinstance(f, str) for f in features) and isinstance(blobs, list)):
        return None
    chunks: list[dict[str, Any]] = []
    for b in blobs:
        if not isinstance(b, dict) or not isinstance(b.get("chunks"), list):
            return None
        for c in b["chunks"]:
            if not (isinstance(c, dict) and all(_int(c.get(k)) and c[k] >= 0
                                                for k in ("offset", "raw", "stored"))
                    and isinstance(c.get("codec"), str) and isinstance(c.get("digest"), str)):
                return None
            chunks.append(c)
    return version, digest, features, chunks


def _encodable(tree: dict[str, Any]) -> bool:
    """False when a string holds a lone surrogate (JSON allows the escape "\\ud800"; UTF-8
    cannot encode it)."""
    try:
        json.dumps(tree, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def model(data: bytes, keys: Keys, skeletons: frozenset[str]) -> Prediction:
    """The reading order, from the format's rules (not from hibernate's code): header,
    trailer, manifest digest, JSON and schema, the manifest against its container, chunk
    spans, then the signature. ``skeletons``: those of manifests known to pass the schema."""
    def fail(error: str) -> Prediction:
        return Prediction(error)

    if len(data) < HEADER_V1.size:
        return fail("FormatError")
    magic, version, bits = HEADER_V1.unpack_from(data)
    if magic != MAGIC or version < 1:
        return fail("FormatError")
    if version == 1:
        header_size, bits = HEADER_V1.size, 0
    else:
        if len(data) < HEADER_V2.size:  # the header itself is cut short
            return fail("FormatError")
        if version > FORMAT_VERSION or bits & ~KNOWN_BITS:
            return fail("VersionError")
        header_size = HEADER_V2.size
    if len(data) < header_size + TRAILER_SIZE:
        return fail("FormatError")
    tail = data[-TRAILER_SIZE:]
    if tail[-8:] != TRAILER_MAGIC:
        return fail("FormatError")
    if struct.unpack("<I", tail[116:120])[0] != zlib.crc32(tail[:116]):
        return fail("FormatError")
    off, length, digest, key_id, mac, tversion, _, _ = BODY.unpack(tail[:116])
    if tversion > FORMAT_VERSION:
        return fail("VersionError")
    if tversion != version:
        return fail("FormatError")
    if length > MAX_MANIFEST or off < header_size or off + length != len(data) - TRAILER_SIZE:
        return fail("FormatError")
    raw = data[off:off + length]
    if hashlib.sha256(raw).digest() != digest:
        return fail("IntegrityError")
    try:
        tree = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        return fail("FormatError")
    if not isinstance(tree, dict):
        return fail("FormatError")
    typed = _typed(tree)
    if typed is None:
        return fail("FormatError")
    fversion, digest_name, features, chunks = typed
    unknown = skeleton(tree) not in skeletons
    if version >= 2 and not _encodable(tree):
        unknown = True  # no UTF-8 canonical form: a FormatError, wherever the reader sees it

    def after(error: str) -> Prediction:
        return Prediction(error, schema_unknown=unknown)

    # the manifest against its container
    if fversion > FORMAT_VERSION:
        return after("VersionError")
    if fversion != version or digest_name not in DIGEST_NAMES:
        return after("FormatError")
    if version >= 2:
        if any(f not in FEATURE_BITS for f in features):
            return after("FormatError")
        if sum(FEATURE_BITS[f] for f in set(features)) != bits:
            return after("FormatError")
        if (digest_name == "blake3") != ("blake3" in features):
            return after("FormatError")
        if "zstd" not in features and any(c["codec"] == "zstd" for c in chunks):
            return after("FormatError")
    # chunks: hex digests (stores name objects by them), known codecs, bounded, inside the
    # data section, raw ones exact, no overlaps; at most 1024x the file's size in all
    for c in chunks:
        if len(c["digest"]) != 64 or any(ch not in "0123456789abcdef" for ch in c["digest"]):
            return after("FormatError")
        if c["codec"] not in CODEC_NAMES or c["raw"] > MAX_CHUNK:
            return after("FormatError")
        if c["offset"] < header_size or c["offset"] + c["stored"] > off:
            return after("FormatError")
        if c["codec"] == "raw" and c["stored"] != c["raw"]:
            return after("FormatError")
    spans = sorted((c["offset"], c["offset"] + c["stored"]) for c in chunks)
    for i, (start_a, end_a) in enumerate(spans):
        for start_b, end_b in spans[i + 1:]:
            if start_b >= end_a:
                break
            if start_a < end_b:
                return after("FormatError")
    if sum(c["raw"] for c in chunks) > 1024 * max(len(data), 1):
        return after("FormatError")
    # the signature
    if version == 1:
        mine, expected = keys.legacy_id, keys.legacy_sign(data[:header_size], raw)
        manifest_digest = hashlib.sha256(raw).hexdigest()
    else:
        try:
            canon = canonical(tree)
        except UnicodeEncodeError:  # see _encodable: not a valid v2 manifest
            return after("FormatError")
        mine, expected = keys.key_id, keys.sign(data[:header_size], canon)
        manifest_digest = hashlib.sha256(canon).hexdigest()
    if key_id == bytes(16) and mac == bytes(32):
        status = "unsigned"
    elif key_id != mine:
        status = "foreign"
    elif not hmac.compare_digest(mac, expected):
        return after("IntegrityError")
    else:
        status = "valid"
    return Prediction(None, unknown, status, manifest_digest, tree)


def wrap(head: bytes, manifest: bytes, mode: str, keys: Keys, old_trailer: bytes,
         version: int = FORMAT_VERSION) -> bytes:
    """``head`` (header + chunks) + ``manifest`` + a trailer (format ``version``) with a right
    CRC and digest. mode: stale (the old key id and MAC), unsigned, foreign, resigned (the
    user's key, over the v2 signed message: the header and the manifest's canonical form)."""
    if mode == "stale" and len(old_trailer) == TRAILER_SIZE:
        key_id, mac = old_trailer[48:64], old_trailer[64:96]
    elif mode == "resigned":
        try:
            body = canonical(json.loads(manifest.decode("utf-8")))
        except Exception:  # no canonical form: sign the bytes (the reader stops before)
            body = manifest
        key_id, mac = keys.key_id, keys.sign(head[:HEADER_SIZE], body)
    elif mode == "foreign":
        key_id = hashlib.sha256(b"someone else").digest()[:16]
        mac = hashlib.sha256(b"mac" + manifest).digest()
    else:
        key_id, mac = bytes(16), bytes(32)
    flags = 0 if key_id == bytes(16) else 1
    body = BODY.pack(len(head), len(manifest), hashlib.sha256(manifest).digest(), key_id, mac,
                     version, flags, bytes(12))
    return head + manifest + body + struct.pack("<I", zlib.crc32(body)) + TRAILER_MAGIC


# ---------------------------------------------------------------------------------------
# mutations (plain data, so hypothesis can draw, shrink and print them)

REGIONS = ("any", "header", "data", "manifest", "trailer", "chunk-edge")


def _pos(base: CorpusFile, region_frac: tuple[str, int], size: int) -> int:
    region, frac = region_frac
    n = len(base.data)
    if region == "chunk-edge" and base.chunks:
        off, length = base.chunks[frac % len(base.chunks)]
        pos = (off, off + length - 1, off + length, off - 1)[(frac >> 8) % 4]
    else:
        lo, hi = {"any": (0, n), "header": (0, HEADER_SIZE), "data": (HEADER_SIZE, base.moff),
                  "manifest": (base.moff, base.moff + base.mlen),
                  "trailer": (n - TRAILER_SIZE, n)}[region if region != "chunk-edge" else "any"]
        pos = lo + (hi - lo) * frac // 65536
    return max(0, min(pos, max(size - 1, 0)))


def _nodes(tree: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(tree, dict):
        for k, v in tree.items():
            out += _nodes(v, path + (k,))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            out += _nodes(v, path + (i,))
    return out


def _get_path(tree: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        tree = tree[p]
    return tree


DELETE = "<delete>"


def mutate_json(tree: Any, ops: list[tuple[Any, ...]]) -> Any:
    for op in ops:
        if op[0] == "top":  # a field the manifest and its container must agree on
            if isinstance(tree, dict):
                if op[2] == DELETE:
                    tree.pop(op[1], None)
                else:
                    tree[op[1]] = json.loads(json.dumps(op[2]))
            continue
        nodes = _nodes(tree)
        path = nodes[op[1] % len(nodes)]
        kind = op[0]
        if not path:  # the root
            if kind == "replace":
                tree = op[2]
            continue
        parent, last = _get_path(tree, path[:-1]), path[-1]
        if kind == "replace":
            parent[last] = op[2]
        elif kind == "delete":
            del parent[last]
        elif kind == "int":
            value = parent[last]
            if isinstance(value, int) and not isinstance(value, bool):
                parent[last] = value + op[2]
        elif kind == "dup":
            if isinstance(parent, list):
                parent.insert(last, json.loads(json.dumps(parent[last])))
            else:
                parent[op[2]] = json.loads(json.dumps(parent[last]))
        elif kind == "swap":
            other = nodes[op[2] % len(nodes)]
            if other and other[:-1] == path[:-1]:
                parent[last], parent[other[-1]] = parent[other[-1]], parent[last]
        elif kind == "graft":  # a node's value copied over another node (same shape, wrong place)
            other = nodes[op[2] % len(nodes)]
            parent[last] = json.loads(json.dumps(_get_path(tree, other)))
    return tree


def apply(ops: list[tuple[Any, ...]], base: CorpusFile, other: CorpusFile, keys: Keys
          ) -> bytes:
    b = bytearray(base.data)
    for op in ops:
        kind = op[0]
        if kind == "flip" and b:
            b[_pos(base, op[1], len(b))] ^= 1 << op[2]
        elif kind == "byte" and b:
            b[_pos(base, op[1], len(b))] = op[2]
        elif kind == "truncate":
            del b[_pos(base, op[1], len(b)):]
        elif kind == "insert":
            p = _pos(base, op[1], len(b) + 1)
            b[p:p] = op[2]
        elif kind == "delete":
            p = _pos(base, op[1], len(b))
            del b[p:p + op[2]]
        elif kind == "splice":  # a range of the other file, inserted or written over
            src = _pos(other, op[2], len(other.data))
            piece = other.data[src:src + op[3]]
            p = _pos(base, op[1], len(b))
            b[p:p + (0 if op[4] else len(piece))] = piece
        elif kind == "crossover":  # this file's head on the other file's tail
            p = _pos(base, op[1], len(b))
            b = b[:p] + bytearray(other.data[p:])
        elif kind == "chunk" and base.chunks and other.chunks:
            so, sl = other.chunks[op[1] % len(other.chunks)]
            do, dl = base.chunks[op[2] % len(base.chunks)]
            b[do:do + dl] = other.data[so:so + min(sl, dl)] + bytes(max(0, dl - sl))
        elif kind == "header" and len(b) >= HEADER_SIZE:  # one field of the v2 header
            at, fmt = {"version": (8, "<I"), "bits": (12, "<I"), "reader": (16, "16s")}[op[1]]
            struct.pack_into(fmt, b, at, op[2])
        elif kind in ("manifest", "manifest-bytes"):
            b = bytearray(_rewrap(bytes(b), base, op, keys))
    return bytes(b)


def _rewrap(data: bytes, base: CorpusFile, op: tuple[Any, ...], keys: Keys) -> bytes:
    moff, mlen = base.moff, base.mlen
    if len(data) >= TRAILER_SIZE + HEADER_SIZE:
        off, length = struct.unpack_from("<QQ", data, len(data) - TRAILER_SIZE)
        if off >= HEADER_SIZE and off + length == len(data) - TRAILER_SIZE:
            moff, mlen = off, length
    head, manifest = data[:moff], data[moff:moff + mlen]
    old_trailer = data[moff + mlen:moff + mlen + TRAILER_SIZE]
    if op[0] == "manifest":
        try:
            tree = json.loads(manifest)
        except ValueError:
            tree = json.loads(json.dumps(base.manifest))
        tree = mutate_json(tree, op[1])
        new = json.dumps(tree, separators=(",", ":"), ensure_ascii=op[3]).encode(
            "utf-8", "surrogatepass")
        if op[4]:  # the header's feature bits set to the mutated manifest's features
            features = tree.get("features") if isinstance(tree, dict) else None
            if isinstance(features, list) and len(head) >= HEADER_SIZE and all(
                    isinstance(f, str) and f in FEATURE_BITS for f in features):
                bits = sum(FEATURE_BITS[f] for f in set(features))
                head = head[:12] + struct.pack("<I", bits) + head[16:]
    else:
        edited = bytearray(manifest)
        for pos, value in op[1]:
            if edited:
                edited[pos % len(edited)] = value
        new = bytes(edited)
    return wrap(head, new, op[2], keys, old_trailer,
                op[5] if op[0] == "manifest" else FORMAT_VERSION)


def strategies():  # type: ignore[no-untyped-def]
    from hypothesis import strategies as st

    pos = st.tuples(st.sampled_from(REGIONS), st.integers(0, 65535))
    vocab = st.sampled_from(["name", "kind", "type", "size", "group", "module", "qualname",
                             "shape", "dtype", "skip", "id", "names", "serializer", "meta",
                             "blobs", "chunks", "offset", "raw", "stored", "codec", "digest",
                             "buffers", "multi", "order", "version", "config", "value",
                             "pickle", "numpy", "import", "skipped", "<f8", "|O", "V8", "F",
                             "__builtins__", "os", "print", "sha256", "", "\u0000", "\ud800",
                             "features", "format_version", "how", "reference", "lost",
                             "placeholder", "blake3", "zstd", "placeholders"])
    leaf = (st.none() | st.booleans() | vocab
            | st.integers(-(2**64), 2**64) | st.sampled_from([0, 1, -1, 16, 64, 2**31, 2**63])
            | st.floats(allow_nan=False) | st.text(max_size=12))
    value = st.recursive(leaf, lambda kids: st.lists(kids, max_size=4)
                         | st.dictionaries(vocab | st.text(max_size=6), kids, max_size=4),
                         max_leaves=8)
    json_op = st.one_of(
        st.tuples(st.just("replace"), st.integers(0, 10**6), value),
        st.tuples(st.just("delete"), st.integers(0, 10**6)),
        st.tuples(st.just("int"), st.integers(0, 10**6),
                  st.sampled_from([-1, 1, -64, 64, 4096, -(2**40), 2**63, 10**30])),
        st.tuples(st.just("dup"), st.integers(0, 10**6), vocab),
        st.tuples(st.just("swap"), st.integers(0, 10**6), st.integers(0, 10**6)),
        st.tuples(st.just("graft"), st.integers(0, 10**6), st.integers(0, 10**6)),
        st.tuples(st.just("top"), st.just("format_version"),
                  st.sampled_from([0, 1, 2, 3, 2**32, "2", True, None, DELETE])),
        st.tuples(st.just("top"), st.just("digest"),
                  st.sampled_from(["sha256", "blake3", "md5", "", 3, None, DELETE])),
        st.tuples(st.just("top"), st.just("features"), st.sampled_from(
            [[], ["blake3"], ["placeholders"], ["blake3", "placeholders"],
             ["blake3", "placeholders", "zstd"], ["placeholders", "blake3"],
             ["blake3", "blake3", "placeholders"], ["zstd"], ["blake3", "lzma"],
             ["blake3", 1], "blake3", {}, None, DELETE])),
    )
    mode = st.sampled_from(["stale", "unsigned", "foreign", "resigned"])
    manifest_op = st.tuples(st.just("manifest"), st.lists(json_op, min_size=1, max_size=3),
                            mode, st.booleans(), st.booleans(),  # ensure_ascii, header bits
                            st.sampled_from([2, 2, 2, 2, 2, 2, 1, 3]))  # trailer version
    header_op = st.one_of(
        st.tuples(st.just("header"), st.just("version"), st.sampled_from([0, 1, 3, 2**31])),
        st.tuples(st.just("header"), st.just("bits"),
                  st.sampled_from([*range(8), 1 << 3, 1 << 31])),
        st.tuples(st.just("header"), st.just("reader"),
                  st.sampled_from([b"0.2.0", b"9.9.9", b"", b"\xff" * 16, b"0.2.0\0junk"])))
    op = st.one_of(
        manifest_op, manifest_op,  # twice: mutants that get past the checks are the rarer ones
        header_op,
        st.tuples(st.just("flip"), pos, st.integers(0, 7)),
        st.tuples(st.just("byte"), pos, st.integers(0, 255)),
        st.tuples(st.just("truncate"), pos),
        st.tuples(st.just("insert"), pos, st.binary(min_size=1, max_size=40)),
        st.tuples(st.just("delete"), pos, st.integers(1, 300)),
        st.tuples(st.just("splice"), pos, pos, st.integers(1, 5000), st.booleans()),
        st.tuples(st.just("crossover"), pos),
        st.tuples(st.just("chunk"), st.integers(0, 99), st.integers(0, 99)),
        st.tuples(st.just("manifest-bytes"),
                  st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)),
                           min_size=1, max_size=3), mode),
    )
    return st.tuples(st.sampled_from(["A", "B"]), st.lists(op, min_size=1, max_size=4))


# ---------------------------------------------------------------------------------------
# the oracle


class _NoNewPackages(importlib.abc.MetaPathFinder):
    """While active, a load may import submodules of packages already imported, but no new
    top-level package (a mutated manifest could name any module; trust=True imports it)."""

    active = False

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if self.active and name.partition(".")[0] not in sys.modules:
            raise ImportError(f"fuzz: no new packages ({name})")
        return None


@dataclass
class Stats:
    examples: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    strong: int = 0      # mutants whose manifest is A's or B's: values checked one by one
    values_checked: int = 0
    failed_entries: int = 0

    def summary(self) -> str:
        top = ", ".join(f"{k} {v}" for k, v in self.outcomes.most_common())
        return (f"{self.examples} examples; {self.strong} with an original manifest "
                f"({self.values_checked} restored values compared, {self.failed_entries} "
                f"damaged entries reported); outcomes: {top}")


class Fuzzer:
    def __init__(self, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.keys = Keys.of(os.environ["HIBERNATE_KEY"].encode())
        self.files = {"A": _corpus_file("A", workdir / "a.hib", _session_a()),
                      "B": _corpus_file("B", workdir / "b.hib", _session_b())}
        self.by_digest = {f.digest: f for f in self.files.values()}
        self.skeletons = frozenset(skeleton(f.manifest) for f in self.files.values())
        self.path = workdir / "mutant.hib"
        self.stats = Stats()
        self.crash_dir = workdir
        self.blocker = _NoNewPackages()
        from hibernate._text import table  # hibernate's own table library (rich), imported
        table(["x"], [["y"]])              # here: not a package any file could choose
        for f in self.files.values():  # the harness checks itself on the unmutated files
            self.check(f.data, count=False)
            assert self.stats.failed_entries == 0

    def mutant(self, which: str, ops: list[tuple[Any, ...]]) -> bytes:
        base = self.files[which]
        return apply(ops, base, self.files["B" if which == "A" else "A"], self.keys)

    def check(self, data: bytes, count: bool = True, label: str = "") -> None:
        try:
            self.path.write_bytes(data)
            sys.meta_path.insert(0, self.blocker)
            self.blocker.active = True
            try:
                with time_budget(EXAMPLE_BUDGET):
                    self._check(data)
            finally:
                self.blocker.active = False
                sys.meta_path.remove(self.blocker)
        except BaseException as e:
            if isinstance(e, KeyboardInterrupt):
                raise
            crash = self.crash_dir / f"crash-{hashlib.sha256(data).hexdigest()[:12]}.hib"
            crash.write_bytes(data)
            raise OracleFailure(f"{label}{type(e).__name__}: {e}\n(input saved as {crash})"
                                ) from e
        if count:
            self.stats.examples += 1

    def _check(self, data: bytes) -> None:
        import hibernate

        pred = model(data, self.keys, self.skeletons)

        def guarded(what: str, call: Any) -> tuple[Any, BaseException | None]:
            try:
                return call(), None
            except hibernate.HibernateError as e:
                return None, e
            except Hang:
                raise
            except BaseException as e:
                raise OracleFailure(f"{what} raised a non-hibernate {type(e).__name__}: {e}"
                                    ) from e

        # inspect, and the text a user prints from it
        manifest, err = guarded("inspect", lambda: hibernate.inspect(self.path))
        if manifest is not None:
            try:
                str(manifest), manifest._repr_html_()
            except Exception as e:
                raise OracleFailure(f"printing inspect()'s result raised {type(e).__name__}: "
                                    f"{e}") from e
        if err is not None:
            if not pred.allows(err):
                raise OracleFailure(f"inspect raised {type(err).__name__}: {err}; the format "
                                    f"says {pred}")
            self.stats.outcomes[f"raise {pred.error}" if type(err).__name__ == pred.error
                                else "raise FormatError (schema)"] += 1
        elif pred.error is not None:
            raise OracleFailure(f"inspect succeeded; the format says {pred}")
        else:
            if manifest.signature != pred.signature:
                raise OracleFailure(f"signature {manifest.signature!r}, expected "
                                    f"{pred.signature!r}")
            if manifest.manifest_digest != pred.digest:
                raise OracleFailure(f"manifest digest {manifest.manifest_digest}, the "
                                    f"format's is {pred.digest}")
        original = self.by_digest.get(pred.digest) if manifest is not None else None

        runs: tuple[tuple[str, dict[str, bool]], ...] = (
            ("data_only", {"data_only": True}), ("trust", {"trust": True}), ("default", {}))
        for mode, kw in runs:
            ns: dict[str, Any] = {}
            report, lerr = guarded(f"load({mode})", lambda kw=kw, ns=ns: hibernate.load(
                self.path, ns, **kw))
            if err is not None:  # inspect failed: every load fails the same way
                if lerr is None or type(lerr) is not type(err):
                    raise OracleFailure(f"load({mode}) gave {lerr!r} where inspect raised "
                                        f"{err!r}")
                if ns:
                    raise OracleFailure(f"load({mode}) raised but bound {sorted(ns)}")
                continue
            if lerr is not None:
                allowed = (mode == "default" and isinstance(lerr, hibernate.UntrustedFileError)
                           and manifest.signature != "valid")
                if not allowed:
                    raise OracleFailure(f"load({mode}) raised {type(lerr).__name__}: {lerr} "
                                        "although inspect succeeded")
                if ns:
                    raise OracleFailure(f"load({mode}) raised but bound {sorted(ns)}")
                self.stats.outcomes[f"{mode}: untrusted"] += 1
                continue
            try:
                str(report), report._repr_html_()
            except Exception as e:
                raise OracleFailure(f"printing a LoadReport raised {type(e).__name__}") from e
            if set(ns) != set(report.restored):
                raise OracleFailure(f"load({mode}) bound {sorted(ns)} but reports "
                                    f"{sorted(report.restored)}")
            if original is not None:
                assert pred.tree is not None
                self._strong(mode, manifest, report, ns, original, data, pred.tree)
            self.stats.outcomes[f"{mode}: {'ok' if not report.failed else 'some failed'}"] += 1
        if manifest is not None:
            self._snapshot(original)

    def _strong(self, mode: str, manifest: Any, report: Any, ns: dict[str, Any],
                original: CorpusFile, data: bytes, tree: dict[str, Any]) -> None:
        """``tree``: the mutant's manifest, which has the original's canonical form (so its
        chunks are the original's, but may lie elsewhere: offsets are not signed)."""
        if mode == "default" and manifest.signature != "valid":
            raise OracleFailure("a default load of a file not signed with the user's key "
                                "restored pickled data instead of raising UntrustedFileError")
        for name in report.restored:
            if name not in original.values or not same(ns[name], original.values[name]):
                raise OracleFailure(f"load({mode}) restored a wrong value for {name!r}")
            self.stats.values_checked += 1
        if {"shared", "holder"} <= set(report.restored) and \
                ns["holder"]["s"] is not ns["shared"]:
            raise OracleFailure("identity between shared and holder was lost")
        # untrusted: needs code; reference: data_only binds module and import references
        # only when they are included by name
        untrusted = {n for n, s in report.skipped.items() if s.code == "untrusted"
                     or (mode == "data_only" and s.code == "reference")}
        accounted = set(report.restored) | set(report.failed) | untrusted
        if accounted != original.loadable:
            raise OracleFailure(f"load({mode}): entries neither restored, failed nor skipped: "
                                f"{sorted(original.loadable - accounted)}")
        self.stats.failed_entries += len(report.failed)
        if mode == "trust":
            damaged: set[str] = set()
            for names, blobs in original.groups.values():
                if not all(chunk_intact(tree["digest"], data, c)
                           for b in blobs for c in tree["blobs"][b]["chunks"]):
                    damaged |= names
            if set(report.failed) != damaged:
                raise OracleFailure(f"failed {sorted(report.failed)}, but the damaged entries "
                                    f"are {sorted(damaged)}")
            self.stats.strong += 1

    def _snapshot(self, original: CorpusFile | None) -> None:
        import hibernate

        try:
            snap = hibernate.open(self.path, trust=True)
        except hibernate.HibernateError as e:
            raise OracleFailure(f"open raised {e!r} although inspect succeeded") from e
        with snap:
            for name in list(snap):
                try:
                    value = snap[name]
                except hibernate.HibernateError:
                    continue
                except Hang:
                    raise
                except BaseException as e:
                    raise OracleFailure(f"snapshot[{name!r}] raised a non-hibernate "
                                        f"{type(e).__name__}: {e}") from e
                if original is not None and (name not in original.values
                                             or not same(value, original.values[name])):
                    raise OracleFailure(f"snapshot[{name!r}] is a wrong value")


def run(seconds: float, workdir: Path, seed: int = 0, batch: int = 50,
        progress: bool = False) -> Stats:
    """Fuzz for ``seconds``; raise OracleFailure (after hypothesis shrinks it) on a finding.
    Needs HIBERNATE_KEY set (the key mutants are re-signed with)."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hseed

    fuzzer = Fuzzer(workdir)
    end = time.monotonic() + seconds
    strategy = strategies()  # type: ignore[no-untyped-call]

    @settings(max_examples=batch, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck),
              phases=(Phase.generate, Phase.target, Phase.shrink), report_multiple_bugs=False)
    @given(strategy)
    def one(case: tuple[str, list[tuple[Any, ...]]]) -> None:
        if time.monotonic() > end:
            return
        which, ops = case
        fuzzer.check(fuzzer.mutant(which, ops), label=f"{which} {ops!r}:\n")

    rounds = 0
    shown = time.monotonic()
    while time.monotonic() < end:
        hseed(seed * 1_000_003 + rounds)(one)()
        rounds += 1
        if progress and time.monotonic() - shown > 30:
            shown = time.monotonic()
            print(f"  {fuzzer.stats.summary()}", flush=True)
    return fuzzer.stats


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--out", type=Path, default=Path("fuzz-out"),
                    help="where failing inputs are written (default ./fuzz-out)")
    ap.add_argument("--replay", type=Path, help="run the oracle on one file and exit")
    args = ap.parse_args(argv)
    src = Path(__file__).resolve().parent.parent / "src"
    if src.is_dir() and str(src) not in sys.path:
        sys.path.insert(0, str(src))
    with tempfile.TemporaryDirectory(prefix="hib-fuzz-") as tmp:
        # a fixed throwaway key (so saved crash files replay) and no user config
        os.environ["HIBERNATE_KEY"] = FUZZ_KEY
        os.environ["HIBERNATE_CONFIG_DIR"] = str(Path(tmp) / "config")
        if args.replay:
            fuzzer = Fuzzer(Path(tmp) / "work")
            fuzzer.crash_dir = Path(tmp)
            try:
                fuzzer.check(args.replay.read_bytes())
            except OracleFailure as e:
                print(f"FINDING in {args.replay}: {str(e).split(chr(10))[0]}")
                return 1
            print(f"{args.replay}: no finding")
            return 0
        args.out.mkdir(parents=True, exist_ok=True)
        print(f"seed {args.seed}, {args.minutes} min; failing inputs go to {args.out}",
              flush=True)
        try:
            stats = run(args.minutes * 60, Path(tmp) / "work", args.seed, progress=True,
                        batch=200)
        except OracleFailure as e:
            print(f"FINDING: {e}")
            for f in (Path(tmp) / "work").glob("crash-*.hib"):
                f.replace(args.out / f.name)
            return 1
        print(stats.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
