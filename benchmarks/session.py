"""The benchmark sessions: analysts' workspaces of about SCALE GB, built deterministically.

Two of them:

- ``classic`` (``build``): the original benchmark session, kept for comparison across
  sessions of docs/benchmarks.md. A 2M-row DataFrame, three big float arrays in a dict, an
  image, a 100k-entry dict of tuples, a list of 1M small tuples.
- ``analyst`` (``build_analyst``, issue #15): closer to a real session. Data is shared
  between variables: the DataFrame is also held in a dict (``frames["raw"] is df``), a Series
  shares the frame's index, one array is bound to two names and viewed by a third. Plus a
  list of arrays, a list of ~1M small tuples, a 100k-entry dict of small dict records, big
  float arrays and a numpy ``Generator``.

Run as a module's top level (``build(globals(), scale)``) so that functions and classes live
in ``__main__`` like an interactive session's (``interactive`` defines them).
"""

from __future__ import annotations

import pickle
import threading
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

# names each session binds that hold data (what pickle and joblib are given), and the
# interactive code every tool but pickle and joblib saves too
CLASSIC_DATA = ["df", "arrays", "image", "lookup", "pairs"]
ANALYST_DATA = ["df", "frames", "score", "features", "X", "recent", "batches", "events",
                "users", "sim", "grid", "rng"]
CODE = {"classic": ["score", "Model", "model"], "analyst": ["zscore", "Forecast", "fc"]}


def build(ns: dict, scale: float, unpicklables: bool = True) -> None:
    """The classic session (about 1 GB at scale 1)."""
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


def build_analyst(ns: dict, scale: float) -> None:
    """The analyst session (about 1 GB at scale 1; see the module's docstring)."""
    rng = np.random.default_rng(15)
    rows = max(int(2_000_000 * scale), 10)

    # one order table: numeric, nullable Int64, object strings with gaps, categorical,
    # tz-aware datetimes, pandas' default string dtype; a meaningful int64 index
    customers = [f"customer-{k:06d}" for k in range(200_000)]
    picks = rng.integers(0, len(customers), rows)
    customer = [None if i % 17 == 0 else customers[c] for i, c in enumerate(picks.tolist())]
    qty = pd.array(rng.integers(1, 50, rows), dtype="Int64")
    qty[::23] = pd.NA
    cities = np.array(["Berlin", "Lisbon", "Oslo", "Turin", "Lyon", "Ghent", "Cork", "Graz"])
    df = pd.DataFrame(
        {
            "price": rng.lognormal(3.0, 1.0, rows),
            "discount": rng.random(rows) * 0.3,
            "qty": qty,
            "customer": pd.Series(customer, dtype=object),
            "segment": pd.Categorical.from_codes(rng.integers(0, 5, rows),
                                                 ["retail", "pro", "edu", "gov", "other"]),
            "ordered": pd.date_range("2023-03-01", periods=rows, freq="13s",
                                     tz="Europe/Berlin"),
            "city": pd.Series(cities[rng.integers(0, len(cities), rows)]).astype("str"),
        },
    )
    df.index = pd.Index(np.arange(rows, dtype=np.int64) * 7 + 100_000, name="order_id")
    ns["df"] = df
    ns["frames"] = {
        "raw": df,  # the same object as df: one group, not two copies
        "by_segment": df.groupby("segment", observed=True)[["price", "discount"]].mean(),
        "sample": df.iloc[:: 1000].copy(),
    }
    ns["score"] = pd.Series(rng.standard_normal(rows), index=df.index, name="score")

    # a feature matrix bound to two names and viewed by a third
    ns["features"] = rng.standard_normal((rows, 8))
    ns["X"] = ns["features"]
    ns["recent"] = ns["features"][-max(rows // 40, 1):]

    ns["batches"] = [rng.standard_normal(max(int(312_500 * scale), 1)) for _ in range(32)]
    kinds = ["view", "click", "cart", "buy", "leave"]
    ns["events"] = [(i, kinds[i % 5], i * 0.25) for i in range(int(1_000_000 * scale))]
    ns["users"] = {f"u{i:06d}": {"id": i, "name": f"user {i}", "active": i % 3 != 0,
                                 "score": i / 7}
                   for i in range(int(100_000 * scale))}
    ns["sim"] = rng.standard_normal(int(50_000_000 * scale))
    ns["grid"] = rng.random((max(int(4500 * scale), 1), 4000))
    ns["rng"] = rng  # a Generator, its state advanced by all of the above


CLASSIC_CODE = """
def score(row):
    return row * 2

class Model:
    def __init__(self):
        self.w = [1.0, 2.0]

model = Model()
"""

ANALYST_CODE = """
def zscore(s):
    return (s - s.mean()) / s.std()

class Forecast:
    def __init__(self, horizon):
        self.horizon = horizon
        self.coef = [0.5, 0.25, 0.125]

    def predict(self, x):
        return sum(c * x for c in self.coef)

fc = Forecast(12)
"""


def interactive(ns: dict, session: str) -> None:
    """Define the session's interactive code in ``ns`` (functions and classes whose
    ``__module__`` is ``ns["__name__"]``, ``__main__`` in a worker)."""
    exec(CLASSIC_CODE if session == "classic" else ANALYST_CODE, ns)


def build_session(session: str, ns: dict, scale: float, unpicklables: bool = False) -> None:
    """Build ``session`` ("classic" or "analyst") and its interactive code into ``ns``.
    ``unpicklables``: the classic session's lock and generator (hibernate only)."""
    if session == "classic":
        build(ns, scale, unpicklables=unpicklables)
    else:
        build_analyst(ns, scale)
    interactive(ns, session)


def data_names(session: str) -> list[str]:
    return CLASSIC_DATA if session == "classic" else ANALYST_DATA


def data_bytes(ns: dict, names: list[str] | None = None) -> int:
    """Roughly the session's data size: every buffer once (a shared array, frame or index
    is counted once, a view not at all beside its base), a DataFrame at its deep memory
    usage, and containers of small objects at their pickled size."""
    if names is None:
        names = [n for n in (*CLASSIC_DATA, *ANALYST_DATA) if n in ns]
    seen: set[int] = set()

    def size(v: Any) -> int:
        if id(v) in seen:
            return 0
        seen.add(id(v))
        if isinstance(v, np.ndarray):
            base = v
            while isinstance(base.base, np.ndarray):
                base = base.base
            if base is not v:
                return size(base)
            return v.nbytes
        if isinstance(v, pd.DataFrame):
            total = int(v.memory_usage(deep=True, index=False).sum())
            return total + size(v.index)
        if isinstance(v, pd.Series):
            return int(v.memory_usage(deep=True, index=False)) + size(v.index)
        if isinstance(v, pd.Index):
            return int(v.memory_usage(deep=True))
        if isinstance(v, dict) and any(_big(x) for x in v.values()):
            return sum(size(x) for x in v.values())
        if isinstance(v, (list, tuple)) and any(_big(x) for x in v):
            return sum(size(x) for x in v)
        try:
            return len(pickle.dumps(v, 5))
        except Exception:
            return 0

    return sum(size(ns[n]) for n in names if n in ns)


def _big(v: Any) -> bool:
    return isinstance(v, (np.ndarray, pd.DataFrame, pd.Series, pd.Index))
