"""Limits every reader and decoder draws from (a leaf: any layer may import it)."""

from __future__ import annotations

import os

__all__ = ["max_expansion"]


def max_expansion() -> int:
    """How many times its own size a file (or one value's data) may expand to when read
    (``HIBERNATE_MAX_EXPANSION``, default 1024): a 4 KB file cannot make a reader allocate
    gigabytes."""
    try:
        return max(1, int(os.environ.get("HIBERNATE_MAX_EXPANSION", "1024")))
    except ValueError:
        return 1024
