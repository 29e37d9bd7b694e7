"""A quiet progress line for long saves and loads.

Shown only when the operation has run for more than a second, and only where someone is
looking: a terminal (stderr is a TTY) or a Jupyter kernel. ``progress=False`` turns it off,
``progress=True`` forces it on. Updates are throttled to five a second.
"""

from __future__ import annotations

import sys
import time

__all__ = ["Progress", "origin"]

DELAY = 1.0
EVERY = 0.2


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


class Progress:
    def __init__(self, label: str, total: int, enabled: bool | None) -> None:
        self.label, self.total = label, max(total, 1)
        self.enabled = _watched() if enabled is None else enabled
        self.done = 0
        self.start = time.monotonic()
        self._last = 0.0
        self._shown = False

    def __call__(self, n: int) -> None:
        self.done += n
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.start < DELAY or now - self._last < EVERY:
            return
        self._last = now
        self._shown = True
        pct = min(100, 100 * self.done // self.total)
        print(f"\rhibernate: {self.label} {pct:3d}% ({self.done >> 20}/{self.total >> 20} MiB, "
              f"{now - self.start:.1f} s)", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._shown:
            print(f"\rhibernate: {self.label} done ({self.done >> 20} MiB, "
                  f"{time.monotonic() - self.start:.1f} s)    ", file=sys.stderr, flush=True)
