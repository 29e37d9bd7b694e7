"""mmap=True: large raw buffers are mapped copy-on-write, not read."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

import hibernate


def test_mmap_load_maps_instead_of_reading(fresh) -> None:
    fresh.run("""
        import hibernate
        import numpy as np
        import pandas as pd
        big = np.arange(40_000_000, dtype=np.float64)          # 320 MB
        frame = pd.DataFrame({"x": np.arange(2_000_000.0)})
        hibernate.save("big.hib")
    """)
    got = fresh.json("""
        import hibernate, json
        import numpy as np
        import pandas  # imported before measuring: only the load's own cost counts
        def rss():
            with open("/proc/self/status") as f:
                return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmRSS"))
        before = rss()
        r = hibernate.load("big.hib", mmap=True)
        mapped_cost = rss() - before
        big[0] = -1.0; frame.loc[0, "x"] = -2.0             # copy-on-write, private
        ok = bool(big[1:].sum() == np.arange(1, 40_000_000, dtype=np.float64).sum())
        again = {}
        hibernate.load("big.hib", again)
        print(json.dumps({"mapped_cost": mapped_cost, "ok": ok, "writable": big.flags.writeable,
                          "file_unchanged": float(again["big"][0]) == 0.0
                          and float(again["frame"].loc[0, "x"]) == 0.0,
                          "failed": r.failed}))
    """)
    assert got["ok"] and got["writable"] and got["file_unchanged"] and got["failed"] == {}
    assert got["mapped_cost"] < 60 * 2**20, got["mapped_cost"]   # not the 320 MB


def test_mmap_skips_digests_but_verify_finds_the_damage(tmp_path: Path) -> None:
    p = tmp_path / "s.hib"
    hibernate.save(p, {"a": np.zeros(1_000_000), "b": [1]})
    m = hibernate.inspect(p)
    chunk = m.blobs[m.groups[m.entry("a").group].blobs[0]].chunks[0]
    data = bytearray(p.read_bytes())
    data[chunk.offset + 10] ^= 1
    p.write_bytes(bytes(data))
    mapped: dict = {}
    assert hibernate.load(p, mapped, mmap=True).failed == {}        # documented: unchecked
    checked: dict = {}
    assert list(hibernate.load(p, checked).failed) == ["a"]
    proc = subprocess.run([sys.executable, "-m", "hibernate", "verify", str(p)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 1 and "a" in proc.stdout and "digest" in proc.stdout
