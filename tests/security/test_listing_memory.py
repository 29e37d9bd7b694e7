"""The trust listing reads a pickle stream a chunk at a time (trust issue, item 8: ``verify``
and ``trust`` hold at most a few chunks).

A file of about 1 MB may declare a 1 GiB pickle stream (256 chunks of 4 MiB zeros, each a
few hundred bytes compressed, padded to pass the 1024x budget); ``hibernate trust FILE``
must list it holding a few chunks, measured on a child process, and list exactly what a
scan of the whole stream lists: the streamed scan is checked against it on random streams
cut at random places.
"""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest

import hibernate
from hibernate.trust._opcodes import MalformedPickle, referenced_globals
from memory import child

from .craft import manifest_of, rewrap
from .test_pickle_scan import _random_stream

CHUNK = 4 << 20


def _outcome(scan, *args):  # type: ignore[no-untyped-def]
    try:
        return "listed", scan(*args)
    except MalformedPickle as e:
        return "refused", str(e), e.found


def _big_stream_file(path: Path, pieces: list[bytes], pad: int) -> None:
    """A real file whose one pickle group's stream is ``pieces`` (zstd chunks, each at its
    own offset), and ``pad`` unreferenced bytes."""
    import blake3
    import zstandard

    hibernate.save(path.parent / "s.hib", {"x": [1, 2, 3]}, compression="fast")
    data = (path.parent / "s.hib").read_bytes()
    m = manifest_of(data)
    body, chunks, made = b"", [], {}
    for raw in pieces:
        if raw not in made:
            made[raw] = zstandard.ZstdCompressor(level=19).compress(raw)
        comp = made[raw]
        body += bytes(-(32 + len(body)) % 64)
        chunks.append({"offset": 32 + len(body), "raw": len(raw), "stored": len(comp),
                       "codec": "zstd", "digest": blake3.blake3(raw).hexdigest()})
        body += comp
    body += bytes(pad)
    g = next(g for g in m["groups"] if g["serializer"]["name"] == "pickle")
    m["blobs"], g["blobs"], m["groups"] = [{"chunks": chunks}], [0], [g]
    m["entries"] = [e for e in m["entries"] if e.get("group") == g["id"]]
    if "zstd" not in m["features"]:
        m["features"].append("zstd")
    path.write_bytes(rewrap(data, m, body=body))


def _gib_stream(n: int = 256) -> list[bytes]:
    """``os.system`` looked up, then one BINBYTES8 holding the rest, then STOP."""
    total = n * CHUNK
    names = b"\x80\x05\x8c\x02os\x94\x8c\x06system\x94\x93\x94"
    head = names + b"\x8e" + struct.pack("<Q", total - len(names) - 9 - 1)
    zeros = bytes(CHUNK)
    first = head + zeros[len(head):]
    return [first] + [zeros] * (n - 2) + [zeros[:-1] + b"."]


@pytest.mark.parametrize("stream", ["a pickle", "junk"])
def test_listing_a_gigabyte_stream_holds_a_few_chunks(fresh, stream: str) -> None:
    pieces = _gib_stream() if stream == "a pickle" else [bytes(CHUNK)] * 256
    _big_stream_file(fresh.path / "big.hib", pieces, pad=(1 << 20) + 4096)
    assert (fresh.path / "big.hib").stat().st_size < 1_200_000
    got = fresh.json(child("""
        import json
        import hibernate
        from hibernate._api import file_globals, verify_file
        from hibernate.trust import user_key
        user_key().id  # the key's derivation is not what is measured
        start = reset_peak()
        _, found = file_globals("big.hib")
        listing = peak_growth(start)
        start = reset_peak()
        _, damaged = verify_file("big.hib")
        print(json.dumps({"found": [[*k, v] for k, v in found.items()], "damaged": damaged,
                          "listing": listing, "verify": peak_growth(start)}))
    """))
    assert got["listing"] < 64 << 20 and got["verify"] < 64 << 20, got
    assert got["damaged"] == {}, got
    if stream == "a pickle":
        assert got["found"] == [["os", "system", ["x"]]], got
    else:
        assert len(got["found"]) == 1 and got["found"][0][0] == "?", got
        assert "unknown opcode 0x00" in got["found"][0][1], got


def test_the_streamed_listing_is_the_listing_on_random_streams() -> None:
    from hibernate.trust._opcodes import streamed_globals

    rng = random.Random(20240614)
    for _ in range(3000):
        stream = _random_stream(rng)
        whole = _outcome(referenced_globals, stream)
        cut = sorted(rng.sample(range(1, len(stream)), min(len(stream) - 1, 3))) \
            if len(stream) > 1 else []
        bounds = [0, *cut, len(stream)]
        pieces = [stream[a:b] for a, b in zip(bounds, bounds[1:])]
        assert _outcome(streamed_globals, pieces, len(stream)) == whole, (stream, cut)
        ones = [stream[i:i + 1] for i in range(len(stream))]
        assert _outcome(streamed_globals, ones, len(stream)) == whole, stream


def test_arguments_longer_than_the_window_are_skipped_as_the_scan_would_not_read_them(
        ) -> None:
    import pickle

    from hibernate.trust._opcodes import streamed_globals

    for value in (b"x" * (3 << 20), "\u00e9" * (1 << 20), bytearray(3 << 20),
                  [("a" * 70_000).encode(), {"k": b"y" * (2 << 20)}], ValueError("z" * (2 << 20))):
        for proto in (2, 3, 4, 5):
            stream = pickle.dumps(value, protocol=proto)
            whole = _outcome(referenced_globals, stream)
            for size in (4096, 1 << 20, 5 << 20):
                pieces = [stream[i:i + size] for i in range(0, len(stream), size)]
                assert _outcome(streamed_globals, pieces, len(stream)) == whole


def test_a_damaged_chunk_after_a_fault_is_still_reported(tmp_path: Path) -> None:
    pieces = [b"\x80\x05N" + bytes(100), bytes(100)]  # a fault in the first chunk
    _big_stream_file(tmp_path / "d.hib", pieces, pad=0)
    data = bytearray((tmp_path / "d.hib").read_bytes())
    m = manifest_of(bytes(data))
    last = m["blobs"][0]["chunks"][1]
    data[last["offset"] + last["stored"] - 2] ^= 0xFF
    (tmp_path / "d.hib").write_bytes(bytes(data))
    from hibernate._api import file_globals

    _, found = file_globals(tmp_path / "d.hib")
    (((module, why),),) = [found.keys()]
    assert module == "?" and "damaged data" in why, found
