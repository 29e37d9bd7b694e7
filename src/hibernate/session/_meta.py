"""Facts about the saving process that go into the manifest's ``session`` section."""

from __future__ import annotations

import datetime
import os
import platform
import sys
from collections.abc import Iterable
from typing import Any

from .._progress import origin
from .._version import VERSION
from ..format._manifest import Entry

__all__ = ["VERSION", "origin", "session_info"]


def _packages(entries: Iterable[Entry]) -> dict[str, str]:
    tops = set()
    for e in entries:
        for name in (e.module, e.type_name if "." in e.type_name else None):
            if name:
                tops.add(name.split(".")[0])
    found = {}
    for top in sorted(tops):
        version = getattr(sys.modules.get(top), "__version__", None)
        if isinstance(version, str):
            found[top] = version
    return found


def _text(name: str) -> str:
    """A path as valid Unicode (undecodable bytes of a file name become U+FFFD)."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def session_info(entries: Iterable[Entry]) -> dict[str, Any]:
    entries = list(entries)
    return {
        "hibernate": VERSION,
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "platform": platform.platform(),
        "byteorder": sys.byteorder,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "origin": origin(),
        "cwd": _text(os.getcwd()),
        "argv0": _text(sys.argv[0] if sys.argv else ""),
        "packages": _packages(entries),
        "bytecode": sys.implementation.cache_tag,  # code saved by value is for this Python
    }
