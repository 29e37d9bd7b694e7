"""Checkpoint costs on the benchmark session: python benchmarks/checkpoints.py --scale 1.0

1. a full checkpoint into an empty store, one with nothing changed, then one after a small
   variable changed (plain ``checkpoint()``: it knows nothing about what changed);
2. 20 checkpoints, each after a contiguous 1% slice of a big array changed: store size
   against one full checkpoint's;
3. the per-cell cost autosave adds when a cell touched only small variables (median of 5).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from session import build, data_bytes  # noqa: E402

import hibernate  # noqa: E402


def store_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=1.0)
    a = ap.parse_args()
    ns: dict = {"__name__": "__main__"}
    build(ns, a.scale, unpicklables=False)
    size = data_bytes(ns)
    tmp = tempfile.mkdtemp(dir=os.environ.get("BENCH_DIR"))
    try:
        store = os.path.join(tmp, "store")
        t = time.perf_counter()
        full = hibernate.checkpoint(store, ns, message="full")
        t_full = time.perf_counter() - t
        grown = store_bytes(store)
        same = hibernate.checkpoint(store, ns, message="unchanged")
        unchanged_added = store_bytes(store) - grown
        small_times, small_bytes = [], []
        for i in range(5):
            ns["counter"] = i
            t = time.perf_counter()
            c = hibernate.checkpoint(store, ns, message=f"small {i}")
            small_times.append(time.perf_counter() - t)
            small_bytes.append(c.bytes_written)
        from hibernate.checkpoints import Reuse, record_session
        from hibernate.session import Selector

        _, recorded = record_session(store, ns, Selector(None, None), "base")
        inc_times = []
        for i in range(5):
            ns["counter"] = 100 + i
            t = time.perf_counter()
            _, recorded = record_session(store, ns, Selector(None, None), f"cell {i}",
                                         reuse=Reuse(recorded, {"counter"}))
            inc_times.append(time.perf_counter() - t)
        one = store_bytes(store)
        big = ns["arrays"]["a0"]
        step = len(big) // 100
        for i in range(20):
            big[i * step:(i + 1) * step] += 1.0
            hibernate.checkpoint(store, ns, message=f"slice {i}")
        after = store_bytes(store)
        t_small = statistics.median(small_times)
        print(f"`python benchmarks/checkpoints.py --scale {a.scale}` (session data "
              f"{size / 2**20:.0f} MiB)\n")
        print("| measure | value | target |\n|---|---|---|")
        print(f"| full checkpoint | {t_full:.2f} s, {full.bytes_written / 2**20:.0f} MiB "
              "written | |")
        print(f"| checkpoint with nothing changed | {same.bytes_written} B of chunks, store "
              f"+{unchanged_added / 2**10:.0f} KiB | <= 64 KiB |")
        print(f"| checkpoint after one small variable changed (median of 5) | "
              f"{t_small:.2f} s = {t_small / t_full:.0%} of full, "
              f"{statistics.median(small_bytes) / 2**10:.0f} KiB written | <= 15%, <= 5 MB |")
        print(f"| store after 20 checkpoints of 1% slices | {after / one:.2f}x one full "
              "checkpoint | <= 1.3x |")
        print(f"| autosave after a cell that touched only a small variable (only the "
              f"touched names re-serialized; median of 5) | "
              f"{statistics.median(inc_times) * 1000:.0f} ms | <= 1.1x the 3 ms of session 2 |")
        comp = os.path.join(tmp, "compressed")
        t = time.perf_counter()
        hibernate.checkpoint(comp, ns, message="full, compressed", compression="fast")
        t_comp = time.perf_counter() - t
        print(f"| full checkpoint, compression=\"fast\" | {t_comp:.2f} s, store "
              f"{store_bytes(comp) / 2**20:.0f} MiB | |")
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
