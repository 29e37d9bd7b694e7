"""The check that a pickle stream is exactly one pickle, ending at its STOP, done before any
code from it can run (see ``PickleSerializer.load``): ``one_pickle`` walks the opcodes
reading only their argument lengths; ``CheckedUnpickler`` runs that walk at its first
``find_class`` (no code runs from a pickle without a global); ``Source`` is the file it
reads from, noting where its last read began, for the check after a plain-data load."""

from __future__ import annotations

import pickle
import re
from collections.abc import Sequence
from typing import Any

from ._base import Buffer

__all__ = ["CheckedUnpickler", "Source", "one_pickle"]


class Source:
    """The file the unpickler reads a stream from, noting where its last read began (the
    C unpickler reads a whole frame at once, and the STOP either inside one or alone)."""

    def __init__(self, view: memoryview) -> None:
        self.view, self.pos, self.last = view, 0, 0

    def read(self, n: int = -1) -> bytes:
        self.last = self.pos
        end = len(self.view) if n < 0 else min(len(self.view), self.pos + n)
        data = bytes(self.view[self.pos:end])
        self.pos = end
        return data

    def readinto(self, buf: Any) -> int:
        out = memoryview(buf).cast("B")
        self.last = self.pos
        n = min(len(out), len(self.view) - self.pos)
        out[:n] = self.view[self.pos:self.pos + n]
        self.pos += n
        return n

    def readline(self) -> bytes:
        self.last = self.pos
        found = _NEWLINE(self.view, self.pos)
        end = len(self.view) if found is None else found.end()
        data = bytes(self.view[self.pos:end])
        self.pos = end
        return data


class CheckedUnpickler(pickle.Unpickler):
    def __init__(self, source: Source, view: memoryview, buffers: Sequence[Buffer]) -> None:
        super().__init__(source, buffers=buffers)
        self._view = view
        self.checked = False

    def find_class(self, module: str, name: str) -> Any:
        if not self.checked:  # before the first global, and so before anything can run
            one_pickle(self._view)
            self.checked = True
        return super().find_class(module, name)


# opcode -> argument: n >= 0 fixed bytes; -1/-2 one/two lines; -3/-4/-5 a 1/4/8-byte length
# then that many bytes; -6 STOP; -7 not an opcode
_KINDS = [-7] * 256
for _codes, _kind in (
        (pickle.MARK + pickle.POP + pickle.POP_MARK + pickle.DUP + pickle.NONE
         + pickle.NEWTRUE + pickle.NEWFALSE + pickle.EMPTY_TUPLE + pickle.TUPLE + pickle.TUPLE1
         + pickle.TUPLE2 + pickle.TUPLE3 + pickle.EMPTY_LIST + pickle.LIST + pickle.APPEND
         + pickle.APPENDS + pickle.EMPTY_DICT + pickle.DICT + pickle.SETITEM + pickle.SETITEMS
         + pickle.EMPTY_SET + pickle.ADDITEMS + pickle.FROZENSET + pickle.REDUCE + pickle.BUILD
         + pickle.NEWOBJ + pickle.NEWOBJ_EX + pickle.OBJ + pickle.STACK_GLOBAL + pickle.MEMOIZE
         + pickle.BINPERSID + pickle.NEXT_BUFFER + pickle.READONLY_BUFFER, 0),
        (pickle.BININT1 + pickle.BINGET + pickle.BINPUT + pickle.PROTO + pickle.EXT1, 1),
        (pickle.BININT2 + pickle.EXT2, 2),
        (pickle.BININT + pickle.LONG_BINGET + pickle.LONG_BINPUT + pickle.EXT4, 4),
        (pickle.BINFLOAT + pickle.FRAME, 8),
        (pickle.INT + pickle.LONG + pickle.FLOAT + pickle.STRING + pickle.UNICODE + pickle.GET
         + pickle.PUT + pickle.PERSID, -1),
        (pickle.GLOBAL + pickle.INST, -2),
        (pickle.SHORT_BINBYTES + pickle.SHORT_BINSTRING + pickle.SHORT_BINUNICODE
         + pickle.LONG1, -3),
        (pickle.BINBYTES + pickle.BINSTRING + pickle.BINUNICODE + pickle.LONG4, -4),
        (pickle.BINBYTES8 + pickle.BINUNICODE8 + pickle.BYTEARRAY8, -5),
        (pickle.STOP, -6)):
    for _code in _codes:
        _KINDS[_code] = _kind
_NEWLINE = re.compile(b"\n").search


def one_pickle(data: memoryview, pos: int = 0) -> None:
    """Check that the opcodes from ``pos`` (an opcode's start) run to a STOP that is the
    stream's last byte, reading only argument lengths: nothing is decoded or run."""
    kinds, newline, end = _KINDS, _NEWLINE, len(data)
    while True:
        if pos >= end:
            raise pickle.UnpicklingError("the pickle stream ends before its STOP")
        kind = kinds[data[pos]]
        pos += 1
        if kind >= 0:
            pos += kind
        elif kind == -3:
            pos += 1 + (data[pos] if pos < end else end)
        elif kind in (-4, -5):
            width = 4 if kind == -4 else 8
            pos += width + int.from_bytes(data[pos:pos + width], "little")
        elif kind in (-1, -2):
            for _ in range(-kind):
                found = newline(data, pos)
                if found is None:
                    raise pickle.UnpicklingError("the pickle stream ends in a line")
                pos = found.end()
        elif kind == -6:
            break
        else:
            raise pickle.UnpicklingError(
                f"invalid pickle opcode {data[pos - 1]:#04x} at byte {pos - 1}")
    if pos != end:
        raise pickle.UnpicklingError(
            f"{end - pos} byte(s) after the pickle's STOP (at byte {pos - 1}): refused, "
            "a stream must be exactly one pickle")
