"""The batch side: build features from (generated) sales data, fit a model, and end.

Run it with `hibernate run --save pipeline.hib batch.py`: its whole session is saved when it
ends (with a post-mortem if it crashes); no export code is needed here.
"""

import numpy as np
import pandas as pd

rng = np.random.default_rng(42)
N = 50_000
STORES = ["north", "south", "east", "west"]

sales = pd.DataFrame({
    "store": pd.Categorical(rng.choice(STORES, N)),
    "temp": rng.normal(20, 8, N).round(1),
    "promo": rng.integers(0, 2, N),
})
sales["units"] = 50 + 2.5 * sales["temp"] + 30 * sales["promo"] + rng.normal(0, 5, N)


class UnitsModel:
    """Units sold as a linear function of temperature and promotion."""

    def fit(self, x, y):
        design = np.column_stack([x, np.ones(len(x))])
        self.coef_ = np.linalg.lstsq(design, y, rcond=None)[0]
        return self

    def predict(self, temp, promo):
        return float(self.coef_ @ np.array([temp, promo, 1.0]))


model = UnitsModel().fit(sales[["temp", "promo"]].to_numpy(), sales["units"].to_numpy())
store_stats = sales.groupby("store", observed=True)["units"].agg(["mean", "count"])
scratch = rng.standard_normal((2000, 2000))  # 32 MB the service never reads
print(f"batch: fitted {model.coef_.round(2).tolist()} on {N} rows")
