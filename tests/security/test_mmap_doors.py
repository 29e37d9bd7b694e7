"""``mmap=True`` maps only raw numeric buffers (trust issue, item 5): a pickle stream, or
anything that is decoded, is always read and its digest checked, so bytes overwritten in
place in a signed file never run. And hibernate's own saves never truncate a file under a
live mapping: they write a new file and rename it."""

from __future__ import annotations

import pickle
import signal
from pathlib import Path

import hibernate


class _Canary:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, ...]:
        import os

        return (os.system, (f"touch {self.path}",))


def test_a_pickle_stream_overwritten_in_place_never_runs_under_mmap(tmp_path: Path) -> None:
    path = tmp_path / "s.hib"
    words = [f"word number {i}" for i in range(120_000)]  # a pickle stream over 1 MiB
    hibernate.save(path, {"words": words})
    m = hibernate.inspect(path)
    group = m.groups[m.entry("words").group]
    assert group.serializer.name == "pickle"
    stream = m.blobs[group.blobs[0]]
    assert stream.length >= 1 << 20 and len(stream.chunks) == 1
    canary = tmp_path / "canary"
    evil = pickle.dumps(_Canary(str(canary)), protocol=5)
    data = bytearray(path.read_bytes())
    start = stream.chunks[0].offset
    data[start:start + len(evil)] = evil  # same length, same manifest: still "signed"
    path.write_bytes(bytes(data))
    assert hibernate.inspect(path).signature == "valid"
    out: dict = {}
    report = hibernate.load(path, out, mmap=True)
    assert not canary.exists(), "a pickle stream was mapped and ran unchecked"
    assert "digest" in report.failed["words"] and "words" not in out


def test_saving_over_a_mapped_file_never_pulls_the_pages_away(fresh) -> None:
    fresh.run("""
        import numpy as np, hibernate
        big = np.arange(5_000_000, dtype=np.float64)
        hibernate.save("s.hib")
    """)
    proc = fresh.run("""
        import numpy as np, hibernate
        hibernate.load("s.hib", mmap=True)
        hibernate.save("s.hib", {"tiny": 1})       # replaces the file under the mapping
        hibernate.save("s.hib", {"tiny": 2})
        assert float(big.sum()) == float(np.arange(5_000_000, dtype=np.float64).sum())
        print("read every page")
    """, check=False)
    assert proc.returncode != -signal.SIGBUS and proc.returncode == 0, proc.stderr
    assert "read every page" in proc.stdout
