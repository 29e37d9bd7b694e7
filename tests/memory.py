"""Peak resident memory, measured from a reset point.

``ru_maxrss`` cannot bound what one step allocates: it never goes down, and a child process
starts with its parent's figure (Linux keeps it across fork and exec), so a child of a large
pytest process could allocate hundreds of MB without moving it. Linux resets a process's
high-water mark (``VmHWM``) when "5" is written to ``/proc/self/clear_refs``; these helpers
measure from there. ``CHILD`` is the same code for a child script's first lines.
"""

from __future__ import annotations

import textwrap

CHILD = '''
def reset_peak():
    """Start measuring: the peak resident memory becomes the current one."""
    import gc
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status("VmRSS")


def peak_growth(start):
    """Bytes the peak resident memory rose above ``start`` (from ``reset_peak``)."""
    return _status("VmHWM") - start


def _status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(field)
'''

exec(CHILD)  # reset_peak, peak_growth and _status for the test process itself


def child(code: str) -> str:
    """A child script that can call ``reset_peak()`` and ``peak_growth(start)``."""
    return CHILD + textwrap.dedent(code)
