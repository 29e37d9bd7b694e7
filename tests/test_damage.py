"""Damaged, foreign, future and half-written files: hibernate must fail cleanly.

The rules under test (DESIGN.md, "Errors" and "The file"):
- a bad header, trailer, manifest or signature raises a ``HibernateError`` subclass
  (never a bare struct/json/pickle/Unicode/Key/Index error) **before any name is bound**;
- truncation, a foreign file, a malformed manifest -> ``FormatError``; a newer format
  version -> ``VersionError`` (a ``FormatError``); a digest or signature mismatch ->
  ``IntegrityError``; bytes that cannot be read -> ``StorageError``;
- a damaged blob fails **only the entries of the group that owns it**: it is reported in
  ``LoadReport.failed`` and everything else loads;
- a save is atomic: killed or interrupted midway, the previous file stays byte for byte,
  and stale temp files of dead writers are cleaned up by a later save.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import re
import signal
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pytest

import hibernate

np = pytest.importorskip("numpy")

HEADER_SIZE = 32  # format v2 (v1: 16)
TRAILER_SIZE = 128
TRAILER_MAGIC = b"\x89HIBEND\n"
# Trailer layout (see format/_file.py): u64 offset, u64 length, 32 B manifest SHA-256, 16 B key
# id, 32 B HMAC, u32 version, u32 flags, 12 B zero, u32 CRC-32 of the 116 bytes before it.
T_KEY_ID = slice(48, 64)
T_VERSION = 96
T_CRC = 116

ERROR_CLASSES = (hibernate.FormatError, hibernate.VersionError, hibernate.IntegrityError,
                 hibernate.UntrustedFileError, hibernate.StorageError)


# ---------------------------------------------------------------------------------------
# helpers


def make_namespace() -> dict[str, Any]:
    """A small session: scalars, containers, a shared pair, a ~200 KB array, a function."""
    ns: dict[str, Any] = {
        "k": 7,
        "big": 2**70,
        "items": [1, "two", 3.0],
        "cfg": {"a": 1, "b": [1, 2]},
        "arr": np.arange(25_600, dtype=np.float64),  # 200 KiB: goes out-of-band
    }
    ns["shared"] = [10, 20]
    ns["holder"] = {"s": ns["shared"]}  # same list: one group with "shared"
    exec("def f(x):\n    return x * k\n", ns)  # a function defined "interactively"
    return ns


VALUE_NAMES = ("k", "big", "items", "cfg", "arr", "shared", "holder", "f")


def check_restored(target: dict[str, Any], names: set[str]) -> None:
    """Every name in ``names`` holds the value make_namespace() gave it."""
    expected = make_namespace()
    for name in names:
        assert name in target, f"{name} was not restored"
        if name == "arr":
            assert isinstance(target["arr"], np.ndarray)
            assert target["arr"].dtype == np.float64
            np.testing.assert_array_equal(target["arr"], expected["arr"])
        elif name == "f":
            assert target["f"](3) == 3 * target.get("k", 7)
        else:
            assert target[name] == expected[name], name
    if {"shared", "holder"} <= names:
        assert target["holder"]["s"] is target["shared"]


def save_session(path: Path) -> bytes:
    report = hibernate.save(path, make_namespace())
    assert not {n for n, s in report.skipped.items() if s.code != "dunder"}, report.skipped
    return path.read_bytes()


def manifest_span(data: bytes) -> tuple[int, int]:
    offset, length = struct.unpack_from("<QQ", data, len(data) - TRAILER_SIZE)
    assert offset + length == len(data) - TRAILER_SIZE
    return offset, length


def flip(data: bytes, pos: int, mask: int = 0xFF) -> bytes:
    b = bytearray(data)
    b[pos] ^= mask
    return bytes(b)


def fix_trailer_crc(data: bytes) -> bytes:
    b = bytearray(data)
    t = len(b) - TRAILER_SIZE
    struct.pack_into("<I", b, t + T_CRC, zlib.crc32(bytes(b[t:t + T_CRC])))
    return bytes(b)


def v2_mac(manifest: bytes) -> bytes:
    """The test key's format-v2 signature of a manifest (over its canonical form); a
    manifest that does not parse gets a MAC of zeros (the reader refuses it before any
    signature is checked)."""
    from hibernate.format import canonical_bytes, header_bytes, signed_message
    from hibernate.trust import user_key

    try:
        d = json.loads(manifest)
        hibernate.format.Manifest.from_dict(d)
        features = d.get("features", [])
        return user_key().sign(signed_message(canonical_bytes(d), header_bytes(features)))
    except Exception:
        return bytes(32)


def rewrap(data: bytes, manifest: bytes, *, sign: bool = True, version: int = 2) -> bytes:
    """The same header and chunks with another manifest and a consistent trailer: right
    digest, right CRC and, with ``sign``, a valid HMAC with the test key (so the reader gets
    as far as parsing the manifest)."""
    offset, _ = manifest_span(data)
    old_trailer = data[-TRAILER_SIZE:]
    if sign:
        key_id = old_trailer[T_KEY_ID]
        mac = v2_mac(manifest)
    else:
        key_id, mac = bytes(16), bytes(32)
    body = struct.pack("<QQ32s16s32sII12s", offset, len(manifest),
                       hashlib.sha256(manifest).digest(), key_id, mac, version,
                       1 if sign else 0, bytes(12))
    return (data[:offset] + manifest + body + struct.pack("<I", zlib.crc32(body))
            + TRAILER_MAGIC)


def assert_load_fails(path: Path, expected: type[Exception] | tuple[type[Exception], ...]
                      ) -> hibernate.HibernateError:
    """load raises ``expected`` and binds nothing; inspect and open raise it too."""
    sentinel = object()
    target: dict[str, Any] = {"sentinel": sentinel, "k": "old k"}
    before = dict(target)
    with pytest.raises(expected) as info:
        hibernate.load(path, target)
    assert isinstance(info.value, hibernate.HibernateError)
    assert target == before and target["sentinel"] is sentinel, "load bound names"
    with pytest.raises(expected) as info2:
        hibernate.inspect(path)
    assert type(info2.value) is type(info.value)
    with pytest.raises(expected), hibernate.open(path) as snap:
        snap["k"]
    return info.value


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def temps(directory: Path, name: str) -> list[str]:
    return sorted(f for f in os.listdir(directory)
                  if f.startswith(f".{name}.") and f.endswith(".hib-tmp"))


# ---------------------------------------------------------------------------------------
# 1. truncation


def test_truncated_files_raise_format_error_and_bind_nothing(tmp_path: Path) -> None:
    good = tmp_path / "s.hib"
    data = save_session(good)
    assert len(data) > 200_000
    # sanity: the intact file loads
    target: dict[str, Any] = {}
    report = hibernate.load(good, target)
    assert not report.failed
    check_restored(target, set(VALUE_NAMES))

    n = len(data)
    lengths = set(range(0, 300)) | set(range(n - 300, n)) | set(range(300, n - 300, 1499))
    cut = tmp_path / "cut.hib"
    sentinel = object()
    for length in sorted(lengths):
        cut.write_bytes(data[:length])
        target = {"sentinel": sentinel, "arr": "old"}
        try:
            hibernate.load(cut, target)
        except hibernate.FormatError as e:
            # the trailer is at the end: every truncation is "not hibernate / truncated"
            assert re.search(r"not a hibernate file|truncated|incomplete", str(e), re.I), (
                length, str(e))
        else:
            pytest.fail(f"load of a file truncated to {length} of {n} bytes did not raise")
        assert target == {"sentinel": sentinel, "arr": "old"}, length
        assert target["sentinel"] is sentinel
        with pytest.raises(hibernate.FormatError):
            hibernate.inspect(cut)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_open_of_a_bad_file_does_not_leak_its_descriptor(tmp_path: Path) -> None:
    data = save_session(tmp_path / "s.hib")
    bad = tmp_path / "bad.hib"
    bad.write_bytes(data[:-1])
    before = open_fds()
    for _ in range(50):
        with pytest.raises(hibernate.FormatError):
            hibernate.open(bad)
        with pytest.raises(hibernate.FormatError):
            hibernate.load(bad, {})
    assert open_fds() == before


# ---------------------------------------------------------------------------------------
# 2. flipped bytes in the header, trailer and manifest


def test_flipped_trailer_bytes_raise_before_binding(tmp_path: Path) -> None:
    data = save_session(tmp_path / "s.hib")
    bad = tmp_path / "bad.hib"
    seen: set[type] = set()
    for i in range(len(data) - TRAILER_SIZE, len(data)):
        for mask in (0x01, 0x80):
            bad.write_bytes(flip(data, i, mask))
            err = assert_load_fails(bad, (hibernate.FormatError, hibernate.IntegrityError))
            seen.add(type(err))
    # the trailer carries a CRC: any damage to it is a bad trailer, i.e. a FormatError
    assert seen == {hibernate.FormatError}, seen


def test_flipped_manifest_bytes_raise_before_binding(tmp_path: Path) -> None:
    data = save_session(tmp_path / "s.hib")
    offset, length = manifest_span(data)
    assert length > 100
    positions = sorted(set(range(offset, offset + 16)) | set(range(offset, offset + length, 7))
                       | set(range(offset + length - 16, offset + length)))
    bad = tmp_path / "bad.hib"
    for i in positions:
        bad.write_bytes(flip(data, i, 0x01))
        # the trailer's manifest digest no longer matches
        err = assert_load_fails(bad, hibernate.IntegrityError)
        assert re.search(r"digest|damaged", str(err), re.I), str(err)


def test_flipped_header_bytes_raise_before_binding(tmp_path: Path) -> None:
    data = save_session(tmp_path / "s.hib")
    bad = tmp_path / "bad.hib"
    for i in range(HEADER_SIZE):
        bad.write_bytes(flip(data, i, 0x01))
        if i < 8:
            err = assert_load_fails(bad, hibernate.FormatError)
            assert "not a hibernate file" in str(err)
        elif i < 16:  # the version (0 is bad, bigger is "newer") and the feature bits
            assert_load_fails(bad, hibernate.FormatError)
        else:  # the reader version is covered by the signature over header + manifest
            assert_load_fails(bad, hibernate.IntegrityError)


def test_tampered_manifest_with_fixed_digest_fails_the_signature(tmp_path: Path) -> None:
    """Someone edits the manifest and recomputes its digest and the trailer's CRC, but
    cannot recompute the HMAC: IntegrityError, "changed after it was saved"."""
    data = save_session(tmp_path / "s.hib")
    offset, length = manifest_span(data)
    m = json.loads(data[offset:offset + length])
    m["entries"] = [e for e in m["entries"] if e["name"] != "cfg"]
    new = json.dumps(m, separators=(",", ":")).encode()
    forged = bytearray(rewrap(data, new))
    t = len(forged) - TRAILER_SIZE
    forged[t + 64:t + 96] = bytes(a ^ 0x5A for a in forged[t + 64:t + 96])  # a wrong MAC
    bad = tmp_path / "bad.hib"
    bad.write_bytes(fix_trailer_crc(bytes(forged)))
    err = assert_load_fails(bad, hibernate.IntegrityError)
    assert "signature" in str(err)


# ---------------------------------------------------------------------------------------
# 3. files that are not hibernate files


def _foreign_files() -> dict[str, bytes]:
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as z:
        z.writestr("a.txt", "hello" * 100)
    return {
        "empty": b"",
        "one-byte": b"\x89",
        "random": np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes(),
        "text": ("print('hello world')\n" * 50).encode(),
        "short-text": b"hello\n",
        "pickle": pickle.dumps({"a": list(range(1000))}, protocol=5),
        "zip": zbuf.getvalue(),
        "header-only": b"\x89HIB\r\n\x1a\n" + struct.pack("<II", 1, 0),
        "header-then-garbage": b"\x89HIB\r\n\x1a\n" + struct.pack("<II", 1, 0) + b"x" * 1000,
        "trailer-magic-only": b"\x00" * 200 + TRAILER_MAGIC,
    }


@pytest.mark.parametrize("kind", list(_foreign_files()))
def test_non_hibernate_files_raise_format_error(tmp_path: Path, kind: str) -> None:
    p = tmp_path / f"{kind}.hib"
    p.write_bytes(_foreign_files()[kind])
    err = assert_load_fails(p, hibernate.FormatError)
    assert type(err) is hibernate.FormatError
    assert re.search(r"not a hibernate file|truncated|incomplete|trailer", str(err), re.I), (
        str(err))


def test_missing_file_and_directory_raise_storage_error(tmp_path: Path) -> None:
    with pytest.raises(hibernate.StorageError) as info:
        hibernate.load(tmp_path / "nope.hib", {})
    assert isinstance(info.value.__cause__, OSError)
    with pytest.raises(hibernate.StorageError):
        hibernate.inspect(tmp_path / "nope.hib")
    with pytest.raises(hibernate.StorageError):
        hibernate.open(tmp_path / "nope.hib")
    d = tmp_path / "adir.hib"
    d.mkdir()
    target = {"x": 1}
    with pytest.raises(hibernate.HibernateError):
        hibernate.load(d, target)
    assert target == {"x": 1}


# ---------------------------------------------------------------------------------------
# 4. a newer format version


def test_future_header_version_raises_version_error(tmp_path: Path) -> None:
    data = bytearray(save_session(tmp_path / "s.hib"))
    struct.pack_into("<I", data, 8, 99)
    p = tmp_path / "future.hib"
    p.write_bytes(bytes(data))
    err = assert_load_fails(p, hibernate.VersionError)
    assert isinstance(err, hibernate.FormatError)
    assert "99" in str(err) and "version" in str(err).lower()


def test_future_trailer_version_raises_version_error(tmp_path: Path) -> None:
    data = bytearray(save_session(tmp_path / "s.hib"))
    t = len(data) - TRAILER_SIZE
    assert struct.unpack_from("<I", data, t + T_VERSION)[0] == 2
    struct.pack_into("<I", data, t + T_VERSION, 99)
    p = tmp_path / "future.hib"
    p.write_bytes(fix_trailer_crc(bytes(data)))
    err = assert_load_fails(p, hibernate.VersionError)
    assert "99" in str(err) and "version" in str(err).lower()


def test_future_manifest_version_raises_version_error(tmp_path: Path) -> None:
    data = save_session(tmp_path / "s.hib")
    offset, length = manifest_span(data)
    m = json.loads(data[offset:offset + length])
    m["format_version"] = 99
    p = tmp_path / "future.hib"
    p.write_bytes(rewrap(data, json.dumps(m).encode()))
    err = assert_load_fails(p, hibernate.VersionError)
    assert "99" in str(err)


def test_zero_header_version_is_a_format_error(tmp_path: Path) -> None:
    data = bytearray(save_session(tmp_path / "s.hib"))
    struct.pack_into("<I", data, 8, 0)
    p = tmp_path / "zero.hib"
    p.write_bytes(bytes(data))
    err = assert_load_fails(p, hibernate.FormatError)
    assert type(err) is hibernate.FormatError


# ---------------------------------------------------------------------------------------
# malformed manifests that are properly signed: FormatError, never a raw exception


def _mutations() -> dict[str, Any]:
    def chunk0(m: dict[str, Any]) -> dict[str, Any]:
        return m["blobs"][0]["chunks"][0]

    def set_(fn: Any) -> Any:
        return fn

    return {
        "not-json": b"{not json",
        "not-utf8": b"\xff\xfe\xfd",
        "empty": b"",
        "list": b"[1, 2, 3]",
        "empty-object": b"{}",
        "deep-nesting": b"[" * 200_000 + b"]" * 200_000,
        "entries-not-list": set_(lambda m: m.update(entries=5)),
        "entry-not-object": set_(lambda m: m["entries"].append("x")),
        "entry-name-int": set_(lambda m: m["entries"][0].update(name=5)),
        "entry-kind-unknown": set_(lambda m: m["entries"][0].update(kind="alien")),
        "entry-missing-group": set_(lambda m: [e.update(group=999) for e in m["entries"]
                                               if e["kind"] == "value"]),
        "entry-group-bool": set_(lambda m: [e.update(group=True) for e in m["entries"]
                                            if e["kind"] == "value"]),
        "value-without-group": set_(lambda m: [e.pop("group") for e in m["entries"]
                                               if e["kind"] == "value"]),
        "group-blob-missing": set_(lambda m: m["groups"][0]["blobs"].append(10_000)),
        "group-blob-negative": set_(lambda m: m["groups"][0]["blobs"].append(-1)),
        "group-id-duplicate": set_(lambda m: m["groups"].append(dict(m["groups"][0]))),
        "group-names-int": set_(lambda m: m["groups"][0].update(names=[1])),
        "chunk-offset-past-end": set_(lambda m: chunk0(m).update(offset=10**12)),
        "chunk-offset-negative": set_(lambda m: chunk0(m).update(offset=-64)),
        "chunk-offset-in-header": set_(lambda m: chunk0(m).update(offset=0)),
        "chunk-offset-float": set_(lambda m: chunk0(m).update(offset=64.0)),
        "chunk-offset-string": set_(lambda m: chunk0(m).update(offset="64")),
        "chunk-into-manifest": set_(lambda m: chunk0(m).update(raw=10**7, stored=10**7)),
        "chunk-raw-ne-stored": set_(lambda m: chunk0(m).update(raw=chunk0(m)["raw"] + 1)),
        "chunk-codec-unknown": set_(lambda m: chunk0(m).update(codec="zstd-99")),
        "chunks-overlap": set_(lambda m: m["blobs"][1]["chunks"][0].update(
            offset=chunk0(m)["offset"])),
        "digest-unknown": set_(lambda m: m.update(digest="md5")),
        "format-version-string": set_(lambda m: m.update(format_version="1")),
        "session-not-object": set_(lambda m: m.update(session=[])),
        "blobs-missing": set_(lambda m: m.pop("blobs")),
    }


@pytest.mark.parametrize("case", list(_mutations()))
def test_malformed_signed_manifest_raises_format_error(tmp_path: Path, case: str) -> None:
    data = save_session(tmp_path / "s.hib")
    offset, length = manifest_span(data)
    mutation = _mutations()[case]
    if isinstance(mutation, bytes):
        manifest = mutation
    else:
        m = json.loads(data[offset:offset + length])
        mutation(m)
        manifest = json.dumps(m).encode()
    p = tmp_path / "bad.hib"
    p.write_bytes(rewrap(data, manifest))
    err = assert_load_fails(p, hibernate.FormatError)
    assert type(err) is hibernate.FormatError
    # the same without a signature (an "untrusted" file) is still a FormatError
    p.write_bytes(rewrap(data, manifest, sign=False))
    assert_load_fails(p, hibernate.FormatError)


def test_rewrap_helper_produces_a_valid_file(tmp_path: Path) -> None:
    """Guards the tests above: an unchanged manifest, re-signed, loads fine."""
    data = save_session(tmp_path / "s.hib")
    offset, length = manifest_span(data)
    p = tmp_path / "same.hib"
    p.write_bytes(rewrap(data, data[offset:offset + length]))
    assert p.read_bytes() == data
    target: dict[str, Any] = {}
    assert not hibernate.load(p, target).failed
    check_restored(target, set(VALUE_NAMES))


# ---------------------------------------------------------------------------------------
# 5. a damaged blob fails only its own group


def _blob_owners(m: hibernate.Manifest, index: int) -> set[str]:
    return {n for g in m.groups if index in g.blobs for n in g.names}


def test_damaged_blob_fails_only_its_group(tmp_path: Path) -> None:
    good = tmp_path / "s.hib"
    data = save_session(good)
    m = hibernate.inspect(good)
    assert {e.name for e in m.entries if e.kind == "value"} == set(VALUE_NAMES)
    shared_group = [g for g in m.groups if "shared" in g.names]
    assert len(shared_group) == 1 and set(shared_group[0].names) == {"shared", "holder"}
    arr_group = m.groups[[g.id for g in m.groups].index(m.entry("arr").group)]
    assert arr_group.serializer.name == "numpy" or len(arr_group.blobs) >= 2, (
        "the array was not stored outside a pickle stream")

    bad = tmp_path / "bad.hib"
    for index, blob in enumerate(m.blobs):
        owners = _blob_owners(m, index)
        assert owners, f"blob {index} belongs to no group"
        c = blob.chunks[0]
        for pos in sorted({c.offset, c.offset + c.raw // 2, c.offset + c.raw - 1}):
            bad.write_bytes(flip(data, pos, 0x01))
            sentinel = object()
            target: dict[str, Any] = {"sentinel": sentinel, **{n: "old" for n in owners}}
            report = hibernate.load(bad, target)  # must not raise
            assert set(report.failed) == owners, (index, pos, report.failed)
            for reason in report.failed.values():
                assert re.search(r"digest|damage", reason, re.I), reason
            ok = set(VALUE_NAMES) - owners
            assert set(report.restored) >= ok
            assert not owners & set(report.restored)
            check_restored(target, ok)
            # failed names are not bound: their previous values stay
            assert all(target[n] == "old" for n in owners)
            assert target["sentinel"] is sentinel


def test_damaged_blob_in_snapshot_raises_integrity_error_only_for_its_entry(
        tmp_path: Path) -> None:
    good = tmp_path / "s.hib"
    data = save_session(good)
    m = hibernate.inspect(good)
    arr_blobs = m.groups[[g.id for g in m.groups].index(m.entry("arr").group)].blobs
    c = m.blobs[arr_blobs[-1]].chunks[0]
    bad = tmp_path / "bad.hib"
    bad.write_bytes(flip(data, c.offset + c.raw // 2))
    with hibernate.open(bad) as snap:
        assert "arr" in snap
        with pytest.raises(hibernate.IntegrityError):
            snap["arr"]
        with pytest.raises(hibernate.IntegrityError):  # and again: not cached as a value
            snap["arr"]
        assert snap["k"] == 7
        assert snap["items"] == [1, "two", 3.0]
        assert snap["f"](3) == 21
        assert snap["holder"]["s"] is snap["shared"]


def test_file_truncated_under_an_open_snapshot_raises_hibernate_error(
        tmp_path: Path) -> None:
    p = tmp_path / "s.hib"
    data = save_session(p)
    m = hibernate.inspect(p)
    arr_blob = m.blobs[m.groups[[g.id for g in m.groups].index(m.entry("arr").group)].blobs[-1]]
    with hibernate.open(p) as snap:
        assert snap["k"] == 7
        with open(p, "r+b") as f:  # someone truncates the file in place
            f.truncate(arr_blob.chunks[0].offset + 10)
        with pytest.raises(hibernate.StorageError):
            snap["arr"]
    assert len(data) > p.stat().st_size


def test_damaged_blob_load_in_fresh_process(fresh: Any) -> None:
    fresh.run("""
        import numpy as np
        import hibernate
        k = 7
        big = 2**70
        items = [1, "two", 3.0]
        cfg = {"a": 1, "b": [1, 2]}
        arr = np.arange(25_600, dtype=np.float64)
        shared = [10, 20]
        holder = {"s": shared}
        def f(x):
            return x * k
        hibernate.save("s.hib")
    """)
    path = fresh.path / "s.hib"
    data = path.read_bytes()
    m = hibernate.inspect(path)
    for victim in ("arr", "holder"):
        group = m.groups[[g.id for g in m.groups].index(m.entry(victim).group)]
        index = group.blobs[-1]
        c = m.blobs[index].chunks[0]
        path.with_name("bad.hib").write_bytes(flip(data, c.offset + c.raw // 2))
        out = fresh.json("""
            import json
            import hibernate
            r = hibernate.load("bad.hib")
            g = globals()
            vals = {}
            for n in ("k", "big", "items", "cfg", "shared", "holder"):
                if n in g:
                    vals[n] = repr(g[n])
            print(json.dumps({
                "failed": r.failed,
                "restored": list(r.restored),
                "vals": vals,
                "arr_sum": float(g["arr"].sum()) if "arr" in g else None,
                "f3": g["f"](3) if "f" in g else None,
                "f_globals_is_main": g["f"].__globals__ is g if "f" in g else None,
                "alias": g["holder"]["s"] is g["shared"] if "holder" in g else None,
            }))
        """)
        owners = _blob_owners(m, index)
        assert victim in owners
        assert set(out["failed"]) == owners, out
        assert all(re.search(r"digest|damage", r, re.I) for r in out["failed"].values())
        assert not owners & set(out["restored"])
        assert set(VALUE_NAMES) - owners <= set(out["restored"])
        expect = {"k": "7", "big": repr(2**70), "items": "[1, 'two', 3.0]",
                  "cfg": "{'a': 1, 'b': [1, 2]}", "shared": "[10, 20]",
                  "holder": "{'s': [10, 20]}"}
        assert out["vals"] == {n: v for n, v in expect.items() if n not in owners}
        assert out["f3"] == 21 and out["f_globals_is_main"] is True
        if "arr" in owners:
            assert out["arr_sum"] is None
            assert out["alias"] is True
        else:
            assert out["arr_sum"] == float(np.arange(25_600, dtype=np.float64).sum())
            assert out["alias"] is None


# ---------------------------------------------------------------------------------------
# 6. atomic saves


_BIG_SAVE = """
import signal, sys, numpy as np, hibernate
# Python's own Ctrl-C handler, whatever the test runner's process left ignored for children
signal.signal(signal.SIGINT, signal.default_int_handler)
n = int(sys.argv[2])
ns = {{f"a{{i}}": np.full(n, i, dtype=np.uint8) for i in range(8)}}


class Slow:  # saved last: holds the save open after the arrays' bytes are in the temp file
    def __reduce__(self):
        import time
        time.sleep(5)
        return (Slow, ())


ns["z_slow"] = Slow()
print("capturing", flush=True)
try:
    hibernate.save(sys.argv[1], ns)
except KeyboardInterrupt:
    print("INTERRUPTED", flush=True)
    sys.exit(3)
print("SAVED", flush=True)
"""


def _save_and_signal(tmp_path: Path, target: Path, sig: int
                     ) -> tuple[subprocess.CompletedProcess[str], int, list[str]]:
    """Start a big save to ``target`` in a child; send ``sig`` once its temp file has some
    bytes. Returns the outcome, the child's pid and the temp files seen when signalled.
    Retries with more data if the child finished before the signal landed."""
    script = tmp_path / "big_save.py"
    script.write_text(_BIG_SAVE.format())
    for n in (40_000_000, 80_000_000, 120_000_000):
        proc = subprocess.Popen([sys.executable, str(script), str(target), str(n)],
                                cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        seen: list[str] = []
        deadline = time.monotonic() + 60
        try:
            while proc.poll() is None and time.monotonic() < deadline:
                seen = [f for f in temps(target.parent, target.name)
                        if f".{proc.pid}-" in f]
                if seen and (target.parent / seen[0]).stat().st_size > (1 << 20):
                    proc.send_signal(sig)
                    break
                time.sleep(0.001)
        except FileNotFoundError:  # the temp was renamed between listdir and stat
            pass
        finally:
            try:
                out, err = proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
        done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        if "SAVED" not in out and seen:
            return done, proc.pid, seen
    pytest.fail(f"could not signal the writer midway:\n{done.stdout}\n{done.stderr}")


def test_killed_save_leaves_previous_file_and_stale_temp_is_removed_later(
        tmp_path: Path) -> None:
    target = tmp_path / "s.hib"
    old = save_session(target)
    result, pid, seen = _save_and_signal(tmp_path, target, signal.SIGKILL)
    assert result.returncode == -signal.SIGKILL, result
    assert target.read_bytes() == old, "a killed save changed the previous file"
    leftover = temps(tmp_path, target.name)
    assert leftover and all(f".{pid}-" in f for f in leftover), leftover
    ns: dict[str, Any] = {}
    assert not hibernate.load(target, ns).failed
    check_restored(ns, set(VALUE_NAMES))

    # a later successful save removes the dead writer's temp file
    report = hibernate.save(target, {"x": 1})
    assert temps(tmp_path, target.name) == []
    assert report.bytes_written == target.stat().st_size
    ns = {}
    hibernate.load(target, ns)
    assert ns == {"x": 1}


def test_sigint_during_write_aborts_cleanly(tmp_path: Path) -> None:
    """Ctrl-C while the chunks are being written: KeyboardInterrupt propagates, the previous
    file stays and the writer removes its own temp file."""
    target = tmp_path / "s.hib"
    old = save_session(target)
    result, _, _ = _save_and_signal(tmp_path, target, signal.SIGINT)
    assert "INTERRUPTED" in result.stdout and result.returncode == 3, result
    assert target.read_bytes() == old
    assert temps(tmp_path, target.name) == []


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="needs RLIMIT_FSIZE")
def test_io_error_midway_raises_storage_error_and_leaves_old_file(fresh: Any) -> None:
    """The disk "fills up" (RLIMIT_FSIZE) while the chunks are written: StorageError wrapping
    the OSError, the previous file is intact and the temp file is gone."""
    target = fresh.path / "s.hib"
    old = save_session(target)
    out = fresh.json("""
        import json, resource, signal
        import numpy as np
        import hibernate
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, resource.RLIM_INFINITY))
        ns = {"a": np.ones(5_000_000, dtype=np.uint8), "x": 1}
        try:
            hibernate.save("s.hib", ns)
        except Exception as e:
            print(json.dumps({"type": type(e).__name__,
                              "is_storage": isinstance(e, hibernate.StorageError),
                              "cause": type(e.__cause__).__name__, "msg": str(e)}))
        else:
            print(json.dumps({"type": None}))
    """)
    assert out["is_storage"] is True, out
    assert out["cause"] == "OSError", out  # EFBIG
    assert target.read_bytes() == old
    assert temps(fresh.path, target.name) == []


class _Interrupt:
    def __reduce__(self) -> Any:
        raise KeyboardInterrupt


class _Broken:
    def __reduce__(self) -> Any:
        raise RuntimeError("cannot pickle this one")


def test_keyboard_interrupt_in_reduce_propagates_and_leaves_old_file(tmp_path: Path) -> None:
    target = tmp_path / "s.hib"
    old = save_session(target)
    with pytest.raises(KeyboardInterrupt):
        hibernate.save(target, {"x": 1, "boom": _Interrupt(), "y": [1, 2]})
    assert target.read_bytes() == old
    assert temps(tmp_path, target.name) == []
    # the same into a path that did not exist: nothing appears
    fresh_target = tmp_path / "new.hib"
    with pytest.raises(KeyboardInterrupt):
        hibernate.save(fresh_target, {"boom": _Interrupt()})
    assert not fresh_target.exists()
    assert temps(tmp_path, fresh_target.name) == []


def test_ordinary_exception_in_reduce_skips_only_that_name(tmp_path: Path) -> None:
    target = tmp_path / "s.hib"
    old = save_session(target)
    report = hibernate.save(target, {"x": 1, "bad": _Broken(), "y": [1, 2]})
    assert set(report.skipped) == {"bad"}
    assert report.skipped["bad"].code == "unpicklable"
    assert "cannot pickle this one" in report.skipped["bad"].message
    assert {e.name for e in report.entries} == {"x", "y"}
    assert target.read_bytes() != old
    assert temps(tmp_path, target.name) == []
    ns: dict[str, Any] = {"bad": "mine"}
    r = hibernate.load(target, ns)
    assert ns == {"x": 1, "y": [1, 2], "bad": "mine"}
    assert "bad" in r.skipped and not r.failed


def test_stale_temp_cleanup_spares_live_writers(tmp_path: Path) -> None:
    target = tmp_path / "s.hib"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = tmp_path / f".s.hib.{sleeper.pid}-0badc0de.hib-tmp"
        live.write_bytes(b"partial")
        dead_pid = _dead_pid()
        dead = tmp_path / f".s.hib.{dead_pid}-deadbeef.hib-tmp"
        dead.write_bytes(b"partial")
        hibernate.save(target, {"x": 1})
        assert live.exists(), "removed the temp file of a live writer"
        assert not dead.exists(), "left the temp file of a dead writer"
    finally:
        sleeper.kill()
        sleeper.wait()


def _dead_pid() -> int:
    for pid in range(999_999, 900_000, -1):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            continue
    pytest.skip("no free pid found")


def test_stale_temp_cleanup_spares_other_targets_live_writers(tmp_path: Path) -> None:
    dead_pid = _dead_pid()
    other_name = f"data.{dead_pid}-01-01.hib"  # e.g. "data.2024-01-01.hib"
    # a live writer (this very process) is saving other_name right now
    other_tmp = tmp_path / f".{other_name}.{os.getpid()}-deadbeef.hib-tmp"
    other_tmp.write_bytes(b"partial")
    hibernate.save(tmp_path / "data", {"x": 1})
    assert other_tmp.exists(), "saving 'data' removed the live temp file of " + other_name


# ---------------------------------------------------------------------------------------
# 7. the error tree


def test_error_tree() -> None:
    for cls in ERROR_CLASSES:
        assert issubclass(cls, hibernate.HibernateError)
        assert issubclass(cls, Exception)
    assert issubclass(hibernate.VersionError, hibernate.FormatError)
    for a in (hibernate.FormatError, hibernate.IntegrityError, hibernate.UntrustedFileError,
              hibernate.StorageError):
        for b in (hibernate.FormatError, hibernate.IntegrityError,
                  hibernate.UntrustedFileError, hibernate.StorageError):
            assert issubclass(a, b) == (a is b)


def test_each_damage_gets_its_own_class(tmp_path: Path) -> None:
    data = save_session(tmp_path / "s.hib")
    offset, length = manifest_span(data)
    m = hibernate.inspect(tmp_path / "s.hib")
    future = bytearray(data)
    struct.pack_into("<I", future, 8, 99)
    cases: dict[str, tuple[bytes, type[Exception]]] = {
        "truncated": (data[:-1], hibernate.FormatError),
        "foreign": (b"PK\x03\x04" + bytes(300), hibernate.FormatError),
        "future": (bytes(future), hibernate.VersionError),
        "manifest-flip": (flip(data, offset + length // 2), hibernate.IntegrityError),
        "trailer-flip": (flip(data, len(data) - 70), hibernate.FormatError),
        "bad-json": (rewrap(data, b"{"), hibernate.FormatError),
    }
    for name, (content, cls) in cases.items():
        p = tmp_path / f"{name}.hib"
        p.write_bytes(content)
        with pytest.raises(cls) as info:
            hibernate.load(p, {})
        assert issubclass(type(info.value), hibernate.HibernateError)
        if cls is hibernate.FormatError:
            assert type(info.value) is hibernate.FormatError, (name, info.value)

    # untrusted: an unsigned file that needs unpickling, naming the entries
    p = tmp_path / "unsigned.hib"
    p.write_bytes(rewrap(data, data[offset:offset + length], sign=False))
    target = {"keep": 1}
    with pytest.raises(hibernate.UntrustedFileError) as info:
        hibernate.load(p, target)
    assert target == {"keep": 1}
    # "items" needs unpickling; "arr" is stored natively and needs no code
    assert "items" in info.value.names and "trust" in str(info.value)
    assert "arr" not in info.value.names

    # a damaged blob is not raised: it is reported
    c = m.blobs[0].chunks[0]
    p = tmp_path / "blob.hib"
    p.write_bytes(flip(data, c.offset))
    report = hibernate.load(p, {})
    assert set(report.failed) == _blob_owners(m, 0)


def test_a_manifest_with_a_lone_surrogate_is_a_format_error(tmp_path: Path) -> None:
    """JSON may escape a lone surrogate ("\\ud800"); Unicode cannot encode it, so the
    canonical form (what signatures cover) cannot be made: FormatError, not a crash."""
    data = save_session(tmp_path / "s.hib")
    offset, length = manifest_span(data)
    m = json.loads(data[offset:offset + length])
    m["session"]["note"] = "\ud800"
    bad = tmp_path / "bad.hib"
    bad.write_bytes(rewrap(data, json.dumps(m).encode(), sign=False))
    err = assert_load_fails(bad, hibernate.FormatError)
    assert "Unicode" in str(err)
