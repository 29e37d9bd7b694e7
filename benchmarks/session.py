"""The benchmark session: an analyst's workspace of about SCALE GB, built deterministically.

Run as a module's top level (``build(globals(), scale)``) so that functions and classes live
in ``__main__`` like an interactive session's.
"""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pyarrow as pa


def build(ns: dict, scale: float, unpicklables: bool = True) -> None:
    rng = np.random.default_rng(0)
    rows = int(2_000_000 * scale)
    ns["df"] = pd.DataFrame({
        "f1": rng.standard_normal(rows), "f2": rng.standard_normal(rows),
        "i1": rng.integers(0, 1 << 40, rows), "i2": rng.integers(0, 100, rows),
        "obj": pd.Series([f"item-{i % 50_000}" for i in range(rows)], dtype=object),
        "arrow": pd.Series([f"a{i % 1000}" for i in range(rows)],
                           dtype=pd.ArrowDtype(pa.string())),
        "cat": pd.Categorical(rng.choice(["red", "green", "blue", "black"], rows)),
        "when": pd.date_range("2024-01-01", periods=rows, freq="s"),
    })
    n_arr = int(780e6 * scale) // 8 // 3
    ns["arrays"] = {f"a{i}": rng.standard_normal(n_arr) for i in range(3)}
    ns["image"] = rng.integers(0, 255, (int(3000 * scale**0.5), 4000, 3), dtype=np.uint8)
    ns["lookup"] = {f"key{i}": (i, str(i), float(i)) for i in range(int(100_000 * scale))}
    ns["pairs"] = [(i, i * 2) for i in range(int(1_000_000 * scale))]
    if unpicklables:
        ns["lock"] = threading.Lock()
        ns["gen"] = (i for i in range(3))


def data_bytes(ns: dict) -> int:
    """Roughly the session's data size (buffers, plus the small objects' pickled size)."""
    import pickle

    total = int(ns["df"].memory_usage(deep=True).sum())
    total += sum(a.nbytes for a in ns["arrays"].values()) + ns["image"].nbytes
    total += len(pickle.dumps(ns["lookup"], 5)) + len(pickle.dumps(ns["pairs"], 5))
    return total
