"""Demo, part 1: an analyst's session, built and saved in one process."""

import hashlib
import json
import sys

import numpy as np
import pandas as pd

import hibernate

rng = np.random.default_rng(7)
N = 300_000
sales = pd.DataFrame({
    "store": pd.Categorical(rng.choice(["north", "south", "east", "west"], N)),
    "day": pd.date_range("2025-01-01", periods=N, freq="min", tz="UTC"),
    "units": rng.integers(0, 50, N),
    "price": rng.normal(20, 5, N).round(2),
    "sku": pd.Series([f"sku-{i % 997}" for i in range(N)], dtype=object),
})
weights = rng.standard_normal((1000, 500))
TAX = 0.2


def revenue(frame):
    """Revenue after tax, per row."""
    return frame["units"] * frame["price"] * (1 - TAX)


class LinearModel:
    """A tiny least-squares model, defined interactively."""

    def __init__(self, ridge=0.0):
        self.ridge = ridge
        self.coef_ = None

    def fit(self, x, y):
        self.coef_ = np.linalg.lstsq(x, y, rcond=None)[0]
        return self

    def predict(self, x):
        return x @ self.coef_


x = np.column_stack([sales["units"].to_numpy(float), np.ones(N)])
model = LinearModel().fit(x, revenue(sales).to_numpy())
by_store = sales.groupby("store", observed=True)["units"].sum()
log = open("demo-log.txt", "w")  # noqa: SIM115  (an open file: skipped, with a reason)
pending = (row for row in range(10))     # a generator: skipped, with a reason


def fingerprint(ns):
    """Content digests of the values, to compare with the restored session."""
    return {
        "sales": int(pd.util.hash_pandas_object(ns["sales"], index=True).sum()),
        "sales_dtypes": {c: str(t) for c, t in ns["sales"].dtypes.items()},
        "weights": hashlib.sha256(ns["weights"].tobytes()).hexdigest(),
        "coef": [round(float(c), 9) for c in ns["model"].coef_],
        "predict": round(float(ns["model"].predict(np.array([[3.0, 1.0]]))[0]), 6),
        "revenue_head": [round(float(v), 6) for v in ns["revenue"](ns["sales"]).head(3)],
        "by_store": {str(k): int(v) for k, v in ns["by_store"].items()},
    }


if __name__ == "__main__":
    path = sys.argv[1]
    report = hibernate.save(path)
    print(report)
    with open(path + ".expected.json", "w") as f:
        json.dump(fingerprint(globals()), f)
