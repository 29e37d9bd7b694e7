"""Checkpoint costs on the benchmark session: python benchmarks/checkpoints.py --scale 1.0

1. a full checkpoint into an empty store, one with nothing changed, then plain
   ``checkpoint()`` calls after a small variable changed (they know nothing about what
   changed);
2. 20 checkpoints, each after a contiguous 1% slice of a big array changed: store size
   against one full checkpoint's;
3. the per-cell cost autosave adds when a cell touched only small variables (median of 5);
4. a full checkpoint with ``compression="fast"``.

``--baseline tests/golden/readers/hibernate-0.1.0-py3-none-any.whl`` measures the same in a
child process running that release, in the same run, and prints both.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from session import build, data_bytes  # noqa: E402

import hibernate  # noqa: E402


def store_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def _incremental() -> tuple[Any, Any, Any]:
    try:
        from hibernate.checkpoints import Reuse, record_session
        from hibernate.session import Selector
    except ImportError:  # hibernate 0.1
        from hibernate._checkpoints import Reuse, record_session  # type: ignore
        from hibernate._select import Selector  # type: ignore
    return Reuse, record_session, Selector


def measure(scale: float, compression: bool) -> dict[str, float]:
    ns: dict = {"__name__": "__main__"}
    build(ns, scale, unpicklables=False)
    out: dict[str, float] = {"data": data_bytes(ns)}
    tmp = tempfile.mkdtemp(dir=os.environ.get("BENCH_DIR"))
    try:
        store = os.path.join(tmp, "store")
        t = time.perf_counter()
        full = hibernate.checkpoint(store, ns, message="full")
        out["full"] = time.perf_counter() - t
        out["full_written"] = full.bytes_written
        grown = store_bytes(store)
        same = hibernate.checkpoint(store, ns, message="unchanged")
        out["unchanged_chunks"] = same.bytes_written
        out["unchanged_added"] = store_bytes(store) - grown
        small_times, small_bytes = [], []
        for i in range(5):
            ns["counter"] = i
            t = time.perf_counter()
            c = hibernate.checkpoint(store, ns, message=f"small {i}")
            small_times.append(time.perf_counter() - t)
            small_bytes.append(c.bytes_written)
        out["small"] = statistics.median(small_times)
        out["small_written"] = statistics.median(small_bytes)
        Reuse, record_session, Selector = _incremental()
        _, recorded = record_session(store, ns, Selector(None, None), "base")
        inc_times = []
        for i in range(5):
            ns["counter"] = 100 + i
            t = time.perf_counter()
            _, recorded = record_session(store, ns, Selector(None, None), f"cell {i}",
                                         reuse=Reuse(recorded, {"counter"}))
            inc_times.append(time.perf_counter() - t)
        out["autosave"] = statistics.median(inc_times)
        one = store_bytes(store)
        big = ns["arrays"]["a0"]
        step = len(big) // 100
        for i in range(20):
            big[i * step:(i + 1) * step] += 1.0
            hibernate.checkpoint(store, ns, message=f"slice {i}")
        out["growth"] = store_bytes(store) / one
        if compression:
            comp = os.path.join(tmp, "compressed")
            t = time.perf_counter()
            hibernate.checkpoint(comp, ns, message="full, compressed", compression="fast")
            out["compressed"] = time.perf_counter() - t
            out["compressed_size"] = store_bytes(comp)
    finally:
        shutil.rmtree(tmp)
    return out


def baseline(wheel: str, scale: float) -> dict[str, float]:
    """The same measurement by the release in ``wheel``, in a child process."""
    where = tempfile.mkdtemp()
    try:
        with zipfile.ZipFile(wheel) as z:
            z.extractall(where)
        env = {**os.environ, "PYTHONPATH": where}
        proc = subprocess.run([sys.executable, __file__, "--scale", str(scale), "--json"],
                              env=env, capture_output=True, text=True, check=True)
        return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]
    finally:
        shutil.rmtree(where)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--baseline", default=None, help="a hibernate wheel to measure beside")
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.json:  # the child of --baseline: an older hibernate may lack compression in stores
        print(json.dumps(measure(a.scale, compression=False)))
        return
    old = baseline(a.baseline, a.scale) if a.baseline else None
    new = measure(a.scale, compression=True)
    cmd = f"python benchmarks/checkpoints.py --scale {a.scale}" + (
        f" --baseline {a.baseline}" if a.baseline else "")
    print(f"`{cmd}` (session data {new['data'] / 2**20:.0f} MiB)\n")
    cols = ["this"] + (["0.1.0"] if old else [])
    print("| measure | " + " | ".join(cols) + " | target |")
    print("|---|" + "---|" * len(cols) + "---|")

    def row(label: str, fmt: Any, target: str) -> None:
        cells = [fmt(r) for r in [new] + ([old] if old else [])]
        print(f"| {label} | " + " | ".join(cells) + f" | {target} |")

    row("full checkpoint", lambda r: f"{r['full']:.2f} s, "
        f"{r['full_written'] / 2**20:.0f} MiB written", "")
    row("checkpoint with nothing changed: chunks written, store growth",
        lambda r: f"{r['unchanged_chunks']:.0f} B, +{r['unchanged_added'] / 2**10:.0f} KiB",
        "<= 64 KiB")
    row("plain `checkpoint()` after one small variable changed (median of 5)",
        lambda r: f"{r['small']:.2f} s = {r['small'] / r['full']:.0%} of full, "
        f"{r['small_written'] / 2**10:.0f} KiB written", "<= 15%, <= 5 MB")
    row("store after 20 checkpoints of 1% slices", lambda r: f"{r['growth']:.2f}x one full",
        "<= 1.3x")
    row("autosave after a cell that touched only a small variable (median of 5)",
        lambda r: f"{r['autosave'] * 1000:.0f} ms", "<= 1.1x 0.1.0's")
    print(f"| full checkpoint, compression=\"fast\" | {new['compressed']:.2f} s, store "
          f"{new['compressed_size'] / 2**20:.0f} MiB |" + (" - |" if old else "") + " |")


if __name__ == "__main__":
    main()
