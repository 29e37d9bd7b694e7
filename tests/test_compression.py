"""Compression: chunks compressed independently with zstd, recorded per chunk, checked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import hibernate
from memory import peak_growth, reset_peak

pytest.importorskip("zstandard")


def session() -> dict:
    rng = np.random.default_rng(1)
    return {"ints": rng.integers(0, 50, 3_000_000), "noise": rng.standard_normal(1_000_000),
            "words": [f"w{i % 300}" for i in range(200_000)], "small": {"k": (1, 2)}}


@pytest.mark.parametrize("compression", ["fast", "small", "zstd:3"])
def test_compressed_round_trip_is_exact_and_smaller(fresh, compression: str) -> None:
    fresh.run(f"""
        import hibernate
        import numpy as np
        rng = np.random.default_rng(1)
        ints = rng.integers(0, 50, 3_000_000)
        noise = rng.standard_normal(1_000_000)
        words = [f"w{{i % 300}}" for i in range(200_000)]
        hibernate.save("raw.hib")
        hibernate.save("z.hib", compression={compression!r})
    """)
    raw, z = fresh.path / "raw.hib", fresh.path / "z.hib"
    assert z.stat().st_size < raw.stat().st_size / 2
    m = hibernate.inspect(z)
    codecs = {c.codec for b in m.blobs for c in b.chunks}
    assert "zstd" in codecs
    noise_chunks = m.blobs[m.groups[m.entry("noise").group].blobs[0]].chunks
    assert all(c.stored <= c.raw for c in noise_chunks)  # incompressible chunks stay raw
    got = fresh.json("""
        import hibernate, json
        import numpy as np
        r = hibernate.load("z.hib")
        rng = np.random.default_rng(1)
        ok = (np.array_equal(ints, rng.integers(0, 50, 3_000_000))
              and np.array_equal(noise, rng.standard_normal(1_000_000))
              and words == [f"w{i % 300}" for i in range(200_000)])
        print(json.dumps({"ok": ok, "failed": r.failed}))
    """)
    assert got == {"ok": True, "failed": {}}


def test_damaged_compressed_chunk_fails_only_its_entry(tmp_path: Path) -> None:
    p = tmp_path / "z.hib"
    ns = session()
    hibernate.save(p, ns, compression="fast")
    m = hibernate.inspect(p)
    chunk = next(c for b in m.blobs for c in b.chunks if c.codec == "zstd")
    owner = next(g.names for g in m.groups
                 if any(chunk in m.blobs[b].chunks for b in g.blobs))
    data = bytearray(p.read_bytes())
    for at in (chunk.offset + 5, chunk.offset + chunk.stored // 2):
        data[at] ^= 0x40
    p.write_bytes(bytes(data))
    out: dict = {}
    r = hibernate.load(p, out)
    assert set(r.failed) == set(owner)
    assert all("damaged" in reason for reason in r.failed.values())
    for name in set(ns) - set(owner):
        assert name in out


def test_unknown_compression_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown compression"):
        hibernate.save(tmp_path / "x.hib", {"a": 1}, compression="gzip")
    assert not (tmp_path / "x.hib").exists()


def test_a_frame_claiming_a_huge_size_is_refused_without_allocating_it() -> None:
    import zstandard

    from hibernate.format import Codec

    bomb = zstandard.ZstdCompressor(level=19).compress(bytes(256 << 20))
    start = reset_peak()
    with pytest.raises(ValueError, match="recorded length"):
        Codec("zstd", 1).decompress(bomb, 4 << 20)
    assert peak_growth(start) < 64 << 20  # well under the 256 MiB the frame claims
