"""`hibernate.open(path)["x"]` for one 8 MB array in a ~1 GB file, in a fresh process with a
cold page cache: python benchmarks/open_one.py"""

import os
import subprocess
import sys
import tempfile

READ = """
import time, sys
t0 = time.perf_counter()
import numpy, hibernate
t1 = time.perf_counter()
with hibernate.open(sys.argv[1]) as snap:
    x = snap["x"]
    t2 = time.perf_counter()
    print(f"| open + read x | {1000 * (t2 - t1):.0f} ms (imports before it: "
          f"{1000 * (t1 - t0):.0f} ms) | < 50 ms |")
    print(f"| bytes read | {snap.bytes_read} for x's {x.nbytes} | little more than x |")
"""

MAKE = """
import sys, hibernate, numpy as np
ns = {f"a{i}": np.random.default_rng(i).standard_normal(16_000_000) for i in range(8)}
ns["x"] = np.arange(1_000_000, dtype=np.float64)
hibernate.save(sys.argv[1], ns)
"""

with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
    path = os.path.join(tmp, "big.hib")
    subprocess.run([sys.executable, "-c", MAKE, path], check=True)
    cold = "warm"
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3")
        cold = "cold"
    except OSError:
        pass
    print(f"`python benchmarks/open_one.py` ({os.path.getsize(path) >> 20} MiB file, {cold} "
          "page cache, fresh process)\n\n| measure | value | target |\n|---|---|---|")
    sys.stdout.flush()
    subprocess.run([sys.executable, "-c", READ, path], check=True)
