"""A quiet progress bar for long saves and loads (tqdm's auto mode: a text bar in a
terminal, a widget in Jupyter).

Shown only when the operation has run for more than a second, and only where someone is
looking: a terminal (stderr is a TTY) or a Jupyter kernel. ``progress=False`` turns it off,
``progress=True`` forces it on. Updates are throttled to five a second.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["Progress", "origin"]

DELAY = 1.0
EVERY = 0.2
# tqdm's own layout with the sizes' unit shown (its default prints "22.9M/22.9M")
BAR = "{l_bar}{bar}| {n_fmt}iB/{total_fmt}iB [{elapsed}<{remaining}, {rate_fmt}]"


def origin() -> str:
    """Where we run: "kernel" (Jupyter), "ipython" (terminal IPython) or "script"."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return "script"
    shell = ipython.get_ipython()
    if shell is None:
        return "script"
    return "kernel" if getattr(shell, "kernel", None) is not None else "ipython"


def _watched() -> bool:
    if getattr(sys.stderr, "isatty", lambda: False)():
        return True
    return origin() == "kernel"


def _bar_class() -> Any:
    """tqdm's notebook widget in a kernel with ipywidgets, its text bar elsewhere."""
    import importlib.util

    if origin() == "kernel" and importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.notebook import tqdm as widget

        return widget
    from tqdm import tqdm as text

    return text


class Progress:
    """Bytes done out of an estimated total (the estimate may be short: the bar's total
    grows to what was done)."""

    def __init__(self, label: str, total: int, enabled: bool | None) -> None:
        self.label, self.total = label, max(total, 1)
        self.enabled = _watched() if enabled is None else enabled
        self.done = 0
        self._bar: Any = None
        if self.enabled:
            self._bar = _bar_class()(
                total=self.total, desc=f"hibernate: {label}", unit="iB", unit_scale=True,
                unit_divisor=1024, delay=DELAY, mininterval=EVERY, file=sys.stderr,
                leave=True, dynamic_ncols=True, bar_format=BAR)

    def __call__(self, n: int) -> None:
        self.done += n
        if self._bar is not None:
            if self._bar.n + n > self._bar.total:
                self._bar.total = self._bar.n + n
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.total = self._bar.n  # finished: the bar ends full, at what was done
            self._bar.close()
