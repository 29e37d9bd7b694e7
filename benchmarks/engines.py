"""A Dask DataFrame several times the client's memory, saved and restored through a local
cluster by hibernate, against Dask's own ``to_parquet`` / ``read_parquet`` of the same data.

    python benchmarks/engines.py --gb 4 --client-mb 1024 --runs 3

A scheduler and two worker processes run apart from the client (``dask scheduler`` /
``dask worker``); the client process runs with its data segment capped (``RLIMIT_DATA``) so
that a tool that funnelled the data through it would fail. Each step runs in a fresh client
process; the table gives medians and the client's peak RSS.
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

STEP = r'''
import json, os, resource, sys, time
cap = int(sys.argv[3]) << 20
resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))
import numpy as np, pandas as pd
import dask, dask.dataframe as dd
from distributed import Client, wait
import hibernate

def part(i, rows):
    rng = np.random.default_rng(i)
    index = pd.RangeIndex(i * rows, (i + 1) * rows)
    return pd.DataFrame({"x": rng.standard_normal(rows), "y": rng.integers(0, 1 << 30, rows),
                         "z": rng.standard_normal(rows)}, index=index)

def peak():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) << 10 for l in f if l.startswith("VmHWM"))

client = Client(sys.argv[1])
what, where, gb = sys.argv[2], sys.argv[4], float(sys.argv[5])
rows = 4_000_000  # 96 MB a partition
n = max(2, int(gb * (1 << 30) / (rows * 24)))
if what.endswith("save"):
    ddf = dd.from_map(part, range(n), args=(rows,)).persist()
    wait(ddf)
    t = time.perf_counter()
    if what == "hibernate-save":
        hibernate.save(where, {"ddf": ddf}, progress=False)
    else:
        ddf.to_parquet(where, write_index=True)
    seconds = time.perf_counter() - t
    del ddf
else:
    t = time.perf_counter()
    if what == "hibernate-load":
        ns = {}
        hibernate.load(where, ns, progress=False)
        ddf = ns["ddf"]
    else:
        ddf = dd.read_parquet(where)
    total = ddf.sum().compute()  # every column: the whole data is read
    seconds = time.perf_counter() - t
client.close()
print(json.dumps({"seconds": seconds, "peak": peak(), "partitions": n}))
'''


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gb", type=float, default=4.0)
    ap.add_argument("--client-mb", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(dir=os.environ.get("BENCH_DIR"))
    script = os.path.join(tmp, "step.py")
    with open(script, "w") as f:
        f.write(STEP)
    dask_cli = os.path.join(os.path.dirname(sys.executable), "dask")
    port = 8786 + os.getpid() % 1000
    address = f"tcp://127.0.0.1:{port}"
    procs = [subprocess.Popen([dask_cli, "scheduler", "--host", "127.0.0.1", "--port",
                               str(port), "--dashboard-address", ":0"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    time.sleep(2)
    procs += [subprocess.Popen([dask_cli, "worker", address, "--nthreads", "1",
                                "--memory-limit", f"{int(a.gb * 0.8 + 2)}GB"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
              for _ in range(2)]
    time.sleep(4)
    results: dict[str, list[dict]] = {}
    try:
        for run in range(a.runs):
            for tool in ("hibernate", "dask"):
                where = os.path.join(tmp, f"{tool}-{run}" + (".hib" if tool == "hibernate" else ""))
                for step in ("save", "load"):
                    out = subprocess.run([sys.executable, script, address, f"{tool}-{step}",
                                          str(a.client_mb), where, str(a.gb)],
                                         capture_output=True, text=True)
                    key = f"{tool}-{step}"
                    if out.returncode != 0:
                        results.setdefault(key, []).append(
                            {"error": out.stderr.strip().splitlines()[-1][:120]})
                        continue
                    results.setdefault(key, []).append(json.loads(out.stdout.splitlines()[-1]))
                shutil.rmtree(where, ignore_errors=True)
                if tool == "hibernate":
                    shutil.rmtree(where + ".engine", ignore_errors=True)
                    if os.path.exists(where):
                        os.remove(where)
    finally:
        for p in procs:
            p.terminate()
        shutil.rmtree(tmp, ignore_errors=True)

    def med(key: str, field: str) -> float | None:
        vals = [r[field] for r in results.get(key, []) if field in r]
        return statistics.median(vals) if vals else None

    print(f"Dask DataFrame of {a.gb} GB, client data capped at {a.client_mb} MiB, "
          f"2 worker processes; medians of {a.runs}")
    print("| step | hibernate (s) | dask (s) | ratio | client peak hibernate / dask (MiB) |")
    print("|---|---|---|---|---|")
    for step, other in (("save", "to_parquet"), ("load", "read_parquet")):
        h, d = med(f"hibernate-{step}", "seconds"), med(f"dask-{step}", "seconds")
        hp, dp = med(f"hibernate-{step}", "peak"), med(f"dask-{step}", "peak")
        errors = [r["error"] for k in (f"hibernate-{step}", f"dask-{step}")
                  for r in results.get(k, []) if "error" in r]
        if h is None or d is None:
            print(f"| {step} vs {other} | failed: {errors[:1]} | | | |")
            continue
        print(f"| {step} vs {other} | {h:.2f} | {d:.2f} | {h / d:.2f}x | "
              f"{(hp or 0) / 2**20:.0f} / {(dp or 0) / 2**20:.0f} |")


if __name__ == "__main__":
    main()
