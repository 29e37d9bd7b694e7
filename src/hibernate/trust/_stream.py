"""Reading a pickle stream's opcode arguments the way CPython's C unpickler decodes them:
fixed-size integers and floats, counted byte strings, newline-ended lines, memo indexes and
GLOBAL names. Each read moves the position and fails, naming the opcode's offset, where the
C unpickler would.

Non-goals: the stack, the memo, and what any value means (``_machine.PickleMachine``).
"""

from __future__ import annotations

import re
import struct
import sys
from typing import NoReturn

__all__ = ["StreamReader"]

_NEWLINE = re.compile(b"\n")
_UINT = {n: struct.Struct("<" + c) for n, c in ((1, "B"), (2, "H"), (4, "I"), (8, "Q"))}
_INT4 = struct.Struct("<i")
_DOUBLE = struct.Struct(">d")


class StreamReader:
    """The argument reader of a pickle machine: ``data``, ``end``, ``pos`` (the next byte)
    and ``at`` (where the current opcode starts) are set by the machine."""

    data: bytes | bytearray | memoryview
    end: int
    pos: int
    at: int

    def fail(self, reason: str) -> NoReturn:
        raise NotImplementedError

    def take(self, n: int) -> int:
        """Consume n argument bytes; where they start."""
        start = self.pos
        if n > self.end - start:
            self.fail("truncated argument")
        self.pos = start + n
        return start

    def byte(self) -> int:
        pos = self.pos
        if pos >= self.end:
            self.fail("truncated argument")
        self.pos = pos + 1
        return self.data[pos]

    def uint(self, n: int) -> int:
        return int(_UINT[n].unpack_from(self.data, self.take(n))[0])

    def sint4(self) -> int:
        return int(_INT4.unpack_from(self.data, self.take(4))[0])

    def double(self) -> float:
        return float(_DOUBLE.unpack_from(self.data, self.take(8))[0])

    def counted(self, nbytes: int) -> tuple[int, int]:
        """A length of ``nbytes`` bytes, then that many bytes: their (start, end)."""
        start = self.pos + nbytes
        if start > self.end:
            self.fail("truncated argument")
        size = (self.data[start - 1] if nbytes == 1
                else int(_UINT[nbytes].unpack_from(self.data, start - nbytes)[0]))
        if size > self.end - start:
            self.fail("truncated argument" if size <= sys.maxsize
                      else "argument length exceeds the maximum size")
        self.pos = start + size
        return start, start + size

    def line_span(self) -> tuple[int, int]:
        """Where the argument up to the next newline is (the newline is consumed)."""
        found = _NEWLINE.search(self.data, self.pos)
        if found is None:
            self.fail("truncated line argument")
        start, self.pos = self.pos, found.end()
        return start, found.start()

    def line(self) -> bytes:
        """The bytes up to the next newline (which is consumed, not returned)."""
        start, end = self.line_span()
        return bytes(self.data[start:end])

    def nonempty_line(self) -> bytes:
        text = self.line()
        if not text:
            self.fail("empty line argument")
        return text

    def c_index(self, text: bytes) -> int:
        """A GET/PUT line argument as C reads it (PyLong_FromString, base 10: it stops at a
        NUL byte); a negative or out of range index fails."""
        try:
            value = int(text.split(b"\0", 1)[0], 10)
        except ValueError:
            self.fail("bad memo index")
        if not 0 <= value <= sys.maxsize:
            self.fail("bad memo index")
        return value

    def names(self, decode: str) -> tuple[str, str]:
        """GLOBAL/INST's two lines, decoded strictly."""
        module = self.nonempty_line()
        try:
            mod = module.decode(decode)
        except UnicodeDecodeError:
            self.fail("undecodable module name")
        qual = self.nonempty_line()
        try:
            return mod, qual.decode(decode)
        except UnicodeDecodeError:
            self.fail("undecodable global name")
