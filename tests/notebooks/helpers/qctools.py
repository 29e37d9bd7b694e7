"""Quality-control helpers of a batch pipeline, imported by ``17_batch_qc_monitor.ipynb``
from a ``sys.path`` entry the notebook adds (as a project's notebooks import its ``src/``)."""

from __future__ import annotations

import random
import statistics


def make_batches(n: int, size: int, seed: int) -> dict[str, list[float]]:
    """``n`` batches of ``size`` readings in [0, 1), the same for a given seed."""
    rng = random.Random(seed)
    return {f"batch-{i}": [round(rng.random() ** 0.7, 3) for _ in range(size)]
            for i in range(n)}


def score(values: list[float], metric: str = "mean") -> float:
    """A batch's quality score by ``metric`` ("mean", "median" or "max")."""
    if metric == "max":
        return max(values)
    if metric == "median":
        return round(statistics.median(values), 4)
    return round(statistics.fmean(values), 4)


def flag(scores: dict[str, float], threshold: float) -> list[str]:
    """The batches scoring above ``threshold``, sorted by name."""
    return sorted(name for name, s in scores.items() if s > threshold)
