"""Autosave in IPython/Jupyter: a checkpoint after cells, within a time budget.

After each cell (IPython's ``post_run_cell``), every ``every`` cells and no more often than
``min_interval`` seconds, the session is checkpointed into the store. A checkpoint captures
(serializes) the namespace on the main thread before the next cell can run, so what is
stored is the state as of the end of that cell; chunks that the store already has are not
written again, so a cell that changed little costs little. When a checkpoint takes longer
than the budget, the next ones are spaced out (said once); a failure is reported once, not
after every cell.

Non-goals (for now): knowing which names a cell touched (every checkpoint checks every
variable), and writing in a background thread.
"""

from __future__ import annotations

import sys
import time
from typing import Any

__all__ = ["disable", "enable"]

BUDGET = 0.5  # seconds a checkpoint may take before autosave spaces them out


class _Autosave:
    def __init__(self, shell: Any, store: str, every: int, min_interval: float,
                 storage_options: dict[str, Any] | None) -> None:
        self.shell, self.store = shell, store
        self.every, self.min_interval = max(1, every), min_interval
        self.options = storage_options
        self.cells = 0
        self.last = 0.0
        self.warned_slow = False
        self.warned_error = False
        self.last_id: str | None = None

    def __call__(self, result: Any = None) -> None:
        self.cells += 1
        now = time.monotonic()
        if self.cells % self.every or now - self.last < self.min_interval:
            return
        from ._checkpoints import checkpoint

        start = time.monotonic()
        try:
            c = checkpoint(self.store, self.shell.user_ns,
                           message=f"autosave after cell {self.shell.execution_count}",
                           storage_options=self.options)
            self.last_id = c.id
            self.warned_error = False
        except Exception as e:
            if not self.warned_error:
                print(f"hibernate autosave failed (said once): {type(e).__name__}: {e}",
                      file=sys.stderr)
                self.warned_error = True
            return
        finally:
            self.last = time.monotonic()
        took = self.last - start
        if took > BUDGET and self.min_interval < 10 * took:
            self.min_interval = 10 * took
            if not self.warned_slow:
                print(f"hibernate autosave: a checkpoint took {took:.1f} s; checkpointing at "
                      f"most every {self.min_interval:.0f} s from now on (said once)",
                      file=sys.stderr)
                self.warned_slow = True


_active: dict[int, _Autosave] = {}


def enable(shell: Any, store: str, every: int = 1, min_interval: float = 0.0,
           storage_options: dict[str, Any] | None = None) -> None:
    disable(shell)
    hook = _Autosave(shell, store, every, min_interval, storage_options)
    _active[id(shell)] = hook
    shell.events.register("post_run_cell", hook)


def disable(shell: Any) -> None:
    hook = _active.pop(id(shell), None)
    if hook is not None:
        shell.events.unregister("post_run_cell", hook)
