"""What a pickle would import and call, read from its opcodes without executing anything.

Used by ``hibernate trust`` to show a file's pickles before the user trusts them. The scan
follows ``GLOBAL``/``INST`` arguments and, for ``STACK_GLOBAL``, the two strings pushed just
before it (directly or through the memo). A name it cannot resolve is reported as
``?``: the scan never guesses in the file's favour.

Non-goals: deciding safety. The restricted unpickler (see _restricted.py) is what enforces.
"""

from __future__ import annotations

import io
import pickletools
from collections import Counter

__all__ = ["UNKNOWN", "referenced_globals"]

UNKNOWN = ("?", "?")
_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING",
               "BINSTRING", "STRING"}
_GET_OPS = {"GET", "BINGET", "LONG_BINGET"}
_PUT_OPS = {"PUT", "BINPUT", "LONG_BINPUT"}
_NO_PUSH = {"MEMOIZE", "PROTO", "FRAME", "STOP", "MARK", "POP", "POP_MARK"} | _PUT_OPS


def referenced_globals(stream: bytes | bytearray | memoryview) -> Counter[tuple[str, str]]:
    """(module, name) → how often the pickle looks it up. Raises ValueError on a bad stream."""
    found: Counter[tuple[str, str]] = Counter()
    memo: dict[int, object] = {}
    last: list[object] = [None, None]  # the two most recent pushed values (str or None)
    data = io.BytesIO(bytes(stream))
    while data.tell() < len(data.getbuffer()):
        for op, arg, _pos in pickletools.genops(data):
            name = op.name
            if name in ("GLOBAL", "INST"):
                module, _, attr = str(arg).partition(" ")
                found[(module, attr)] += 1
            elif name == "STACK_GLOBAL":
                mod, qual = last
                found[(mod, qual) if isinstance(mod, str) and isinstance(qual, str)
                      else UNKNOWN] += 1
            if name == "MEMOIZE":
                memo[len(memo)] = last[1]
            elif name in _PUT_OPS:
                memo[int(arg)] = last[1]  # type: ignore[arg-type]
            if name in _STRING_OPS:
                last = [last[1], arg if isinstance(arg, str) else None]
            elif name in _GET_OPS:
                last = [last[1], memo.get(int(arg))]  # type: ignore[arg-type]
            elif name not in _NO_PUSH:
                last = [last[1], None]
            if name == "STOP":
                break
    return found
