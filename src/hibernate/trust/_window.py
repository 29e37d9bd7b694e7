"""The window ``PickleMachine.run_pieces`` holds over a pickle stream handed over in pieces
(a blob's chunks): before each opcode, the opcode and its whole argument, found from the
opcode's argument layout; an argument longer than the window is let go of as it is read
(a counted one) or refused (a line). What the machine has read is let go.

Non-goals: decoding arguments (``_stream``), the stack and memo (``_machine``).
"""

from __future__ import annotations

import pickle
import pickletools
from collections.abc import Iterator

__all__ = ["ARGUMENTS", "LINE", "WINDOW", "Window"]

# opcode byte -> its argument, for ``run_pieces``: n >= 0 fixed bytes, LINES (GLOBAL and INST:
# two lines), or -k: a k-byte length and that many bytes
LINE = -100
_LENGTH = {-2: 1, -3: 4, -4: 4, -5: 8}
ARGUMENTS: dict[int, int] = {
    op.code.encode("latin-1")[0]: (0 if op.arg is None else op.arg.n if op.arg.n >= 0
                                   else LINE if op.arg.n == pickletools.UP_TO_NEWLINE
                                   else -_LENGTH[op.arg.n])
    for op in pickletools.opcodes}
_KIND = [ARGUMENTS.get(code, 0) for code in range(256)]
_LONG4 = pickle.LONG4[0]
_TWO_LINES = (pickle.GLOBAL[0], pickle.INST[0])
WINDOW = 1 << 20  # run_pieces: the longest argument held; longer counted ones are skipped


class Window:
    """The part of a stream ``run_pieces`` holds: ``buf`` is the stream from ``base`` on,
    filled from the pieces as opcodes need it; what the machine has read is let go."""

    def __init__(self, pieces: Iterator[bytes | bytearray | memoryview], total: int) -> None:
        self.pieces, self.total = pieces, total
        self.buf = bytearray()
        self.base = 0
        self.code = 0  # the opcode ``ready`` found

    @property
    def held(self) -> int:
        return self.base + len(self.buf)

    def more(self, at: int) -> bool:
        """Let go of the bytes before ``at`` and add the next piece; False at the end."""
        piece = next(self.pieces, None)
        if piece is None:
            return False
        if at >= self.held:
            self.base, self.buf[:] = self.held, b""
        elif at > self.base:
            del self.buf[:at - self.base]
            self.base = at
        self.buf += piece
        return True

    def fill(self, at: int, upto: int) -> None:
        while self.held < min(upto, self.total) and self.more(at):
            pass

    def ready(self, at: int, window: int) -> int:
        """Hold the opcode at ``at`` and its whole argument (as much of it as the stream
        has); 0, or where an argument longer than ``window`` ends (a counted one, to be
        skipped), or LINE (a line that long)."""
        buf = self.buf
        i = at - self.base
        if i < len(buf):  # the common case: all of it is held already
            code = self.code = buf[i]
            kind = _KIND[code]
            if kind >= 0:
                if i + 1 + kind <= len(buf):
                    return 0
            elif kind == LINE:
                found = buf.find(b"\n", i + 1)
                if found >= 0 and (code not in _TWO_LINES or buf.find(b"\n", found + 1) >= 0):
                    return 0
            elif i + 1 - kind <= len(buf):
                size = int.from_bytes(buf[i + 1:i + 1 - kind], "little",
                                      signed=code == _LONG4)
                if 0 <= size <= len(buf) - (i + 1 - kind):
                    return 0
        return self._ready(at, window)

    def _ready(self, at: int, window: int) -> int:
        self.fill(at, at + 1)
        if at >= self.held:
            return 0
        code = self.code = self.buf[at - self.base]
        kind = ARGUMENTS.get(code, 0)
        if kind == LINE:
            return self._lines(at, 2 if code in _TWO_LINES else 1, window)
        if kind >= 0:
            self.fill(at, at + 1 + kind)
            return 0
        self.fill(at, at + 1 - kind)
        if self.held < at + 1 - kind:
            return 0  # truncated: the opcode fails as run's would
        start = at + 1 - self.base
        size = int.from_bytes(self.buf[start:start - kind], "little", signed=code == _LONG4)
        end = at + 1 - kind + size
        if size < 0 or end > self.total:
            return 0  # it fails as run's would, on what the window holds
        if end - at <= window:
            self.fill(at, end)
            return 0
        while self.held < end and self.more(self.held):  # let go of it as it is read
            pass
        return end

    def _lines(self, at: int, count: int, window: int) -> int:
        pos = at + 1
        while count:
            found = self.buf.find(b"\n", pos - self.base)
            if found >= 0:
                pos, count = self.base + found + 1, count - 1
            elif self.held - at > window:
                return LINE
            else:
                pos = self.held  # no newline before it
                if not self.more(at):
                    return 0  # nor after: the opcode fails as run's would
        return 0
