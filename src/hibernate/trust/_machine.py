"""One pickle machine: a pickle stream read the way CPython's C unpickler reads it.

Every opcode of protocols 0-5, with the C unpickler's argument decoding, its stack, mark
stack ("fence") and memo, and the same underflow, mark and memo checks. The run ends at
STOP; a stream that goes on after it (inside a frame too) is refused. Each fault is a
``MalformedPickle`` that says where its opcode starts.

``run`` reads a stream held in memory; ``run_pieces`` the same stream handed over in pieces
(a blob's chunks), holding only a window (``_window.Window``): before each opcode, the
opcode and its whole argument (so every check sees what ``run`` would), unless the
argument is longer than the window: a counted one is then skipped unread and pushed as
``skipped`` says, a line is refused. Either way a pickle of any size is read holding at
most about a window and a piece.

The machine decodes every argument (``_stream.StreamReader``); subclasses say what a value
is. It pushes None, True,
False and the empty tuple itself; every other value comes from a hook (listed by kind in
``PickleMachine``), which gets what the machine read and popped. Two machines use it: the
trust listing (_opcodes.py: a value is a known string or something else) and the
restricted loader (_restricted.py: real values, within a budget).

Non-goals: values, budgets, and any decision about what may be imported or called.
"""

from __future__ import annotations

import codecs
import pickle
import pickletools
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, NoReturn

from ._stream import StreamReader
from ._window import LINE, WINDOW, Window

__all__ = ["OPCODE_NAMES", "MalformedPickle", "PickleMachine"]

# opcode byte -> opcode name, for every opcode of protocols 0-5
OPCODE_NAMES: dict[int, str] = {op.code.encode("latin-1")[0]: op.name
                                for op in pickletools.opcodes}

class MalformedPickle(pickle.UnpicklingError, ValueError):
    """The stream is not exactly one pickle the unpickler would read to its STOP."""

    def __init__(self, reason: str, found: Counter[tuple[str, str]] | None = None) -> None:
        self.reason = reason
        self.found: Counter[tuple[str, str]] = Counter(found or ())
        if self.found:
            names = ", ".join(f"{m}.{n}" for m, n in sorted(self.found))
            reason = f"names {names} before: {reason}"
        super().__init__(reason)


class PickleMachine(StreamReader, ABC):
    """One pickle stream, read by ``run`` to its STOP (see the module docstring)."""

    _ops: ClassVar[list[Callable[[Any], bool | None] | None]] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        ops: list[Callable[[Any], bool | None] | None] = [None] * 256
        for code, name in OPCODE_NAMES.items():
            ops[code] = getattr(cls, f"op_{name}", None)
        cls._ops = ops

    def __init__(self, stream: bytes | bytearray | memoryview) -> None:
        self.data: bytes | bytearray | memoryview = (
            stream if isinstance(stream, (bytes, bytearray))
            else memoryview(stream).cast("B"))
        self.end = len(self.data)
        self.base = 0  # where data[0] is in the stream (run_pieces moves it)
        self.total = self.end  # the stream's length
        self.pos = 0
        self.at = 0  # where the current opcode starts
        self.stack: list[Any] = []
        self.marks: list[int] = []
        self.memo: dict[int, Any] = {}
        self.proto = 0
        self.result: Any = None

    # -- running ---------------------------------------------------------------------------

    def malformed(self, reason: str) -> NoReturn:
        """Every fault ends here (a subclass may say what it found before it)."""
        raise MalformedPickle(reason)

    def fail(self, reason: str) -> NoReturn:
        self.malformed(f"{reason} (opcode at byte {self.base + self.at})")

    def run(self) -> Any:
        """Run to STOP; the value STOP popped. Bytes after the STOP are refused."""
        ops, data, end = self._ops, self.data, self.end
        while True:
            at = self.pos
            if at >= end:
                self.at = at
                self.fail("the stream ends before its STOP")
            self.at = at
            op = ops[data[at]]
            self.pos = at + 1
            if op is None:
                self.fail(f"unknown opcode {data[at]:#04x}")
            if op(self):
                break
        return self.stopped()

    def stopped(self) -> Any:
        """After STOP: the result, unless bytes follow it."""
        extra = self.total - self.base - self.pos
        if extra:
            self.malformed(f"{extra} byte{'s' if extra > 1 else ''} after its STOP "
                           f"(at byte {self.base + self.pos - 1})")
        return self.result

    def run_pieces(self, pieces: Iterable[bytes | bytearray | memoryview], total: int,
                   window: int = WINDOW) -> Any:
        """``run`` over a stream of ``total`` bytes handed over as consecutive pieces,
        holding about ``window`` bytes beyond the piece being read (see the docstring)."""
        win = Window(iter(pieces), total)
        self.data, self.base, self.total, self.pos, self.end = win.buf, 0, total, 0, 0
        try:
            return self._run_window(win, window)
        finally:
            win.buf.clear()  # a fault's traceback keeps this frame: not the window

    def _run_window(self, win: Window, window: int) -> Any:
        ops, ready = self._ops, win.ready
        while True:
            at = self.base + self.pos
            skip = ready(at, window)
            if skip > 0:  # read past, let go of: the window is beyond it
                self.at, self.base = 0, at
                self.stack.append(self.skipped(OPCODE_NAMES[win.code], skip - at))
                self.base, self.pos = skip, 0
                continue
            self.base, self.end = win.base, len(win.buf)
            self.pos = self.at = at - win.base
            if skip == LINE:
                self.fail(f"an argument line longer than {window} bytes (not read)")
            if self.pos >= self.end:
                self.fail("the stream ends before its STOP")
            code = win.buf[self.pos]
            op = ops[code]
            self.pos += 1
            if op is None:
                self.fail(f"unknown opcode {code:#04x}")
            if op(self):
                break
        return self.stopped()

    def skipped(self, name: str, size: int) -> Any:
        """What a counted argument longer than ``run_pieces``'s window pushes (opcode
        ``name``, ``size`` bytes with its length): a machine that needs it refuses."""
        self.fail(f"a {name} argument of {size} bytes, longer than this reader holds")

    # -- stack, marks and memo (the C unpickler's checks) ---------------------------------

    @property
    def fence(self) -> int:
        return self.marks[-1] if self.marks else 0

    def pop(self) -> Any:
        if len(self.stack) <= self.fence:
            self.fail("stack underflow")
        return self.stack.pop()

    def top(self) -> Any:
        if len(self.stack) <= self.fence:
            self.fail("stack underflow")
        return self.stack[-1]

    def marker(self) -> int:
        if not self.marks:
            self.fail("no MARK to pop")
        return self.marks.pop()

    def pop_items(self, start: int, fenced: bool = True) -> list[Any]:
        if start < 0 or (fenced and start < self.fence):
            self.fail("stack underflow")
        items = self.stack[start:]
        del self.stack[start:]
        return items

    def target(self, x: int) -> Any:
        """APPENDS/SETITEMS/ADDITEMS: the object below the items from ``x`` on."""
        if x > len(self.stack) or x <= self.fence:
            self.fail("stack underflow")
        return self.stack[x - 1]

    def memo_get(self, index: int) -> Any:
        try:
            return self.memo[index]
        except KeyError:
            self.fail(f"memo index {index} was never stored")

    def memo_put(self, index: int) -> None:
        stack = self.stack  # top(), inline: MEMOIZE is the commonest opcode
        if len(stack) <= (self.marks[-1] if self.marks else 0):
            self.fail("stack underflow")
        self.memo[index] = stack[-1]

    # -- hooks: what a value is --------------------------------------------------------------
    # Each returns the value to push, but the four that fill a container or set an
    # object's state (which stays on the stack) return nothing.

    # scalars: a binary number or an empty list, dict or set; bytes, a bytearray or a long
    # integer, ``make(self.data[start:end])``; a string, ``decode(self.data[start:end])``
    # (which may fail as the C unpickler's would), at most ``per_char`` bytes a character;
    # the text of INT, LONG and FLOAT; NEXT_BUFFER and READONLY_BUFFER
    @abstractmethod
    def made(self, value: Any) -> Any: ...
    @abstractmethod
    def decoded(self, make: Callable[[Any], Any], start: int, end: int) -> Any: ...
    @abstractmethod
    def text(self, decode: Callable[[Any], str], start: int, end: int, per_char: int) -> Any: ...
    @abstractmethod
    def int_line(self, text: bytes) -> Any: ...
    @abstractmethod
    def long_line(self, text: bytes) -> Any: ...
    @abstractmethod
    def float_line(self, text: bytes) -> Any: ...
    @abstractmethod
    def next_buffer(self) -> Any: ...
    @abstractmethod
    def readonly(self, value: Any) -> Any: ...

    # containers: a tuple, list, frozenset or dict (keys and values alternate) of the items;
    # APPEND(S), SETITEM(S), ADDITEMS and BUILD
    @abstractmethod
    def collection(self, cls: type, items: list[Any]) -> Any: ...
    @abstractmethod
    def extend(self, target: Any, items: list[Any]) -> None: ...
    @abstractmethod
    def set_items(self, target: Any, items: list[Any]) -> None: ...
    @abstractmethod
    def add_items(self, target: Any, items: list[Any]) -> None: ...
    @abstractmethod
    def build(self, inst: Any, state: Any) -> None: ...

    # globals and calls: GLOBAL and INST give find_class two strings, STACK_GLOBAL any two
    # values; REDUCE, NEWOBJ, NEWOBJ_EX, OBJ and INST; EXT1/2/4; PERSID and BINPERSID
    @abstractmethod
    def find_class(self, module: Any, name: Any) -> Any: ...
    @abstractmethod
    def reduce(self, func: Any, args: Any) -> Any: ...
    @abstractmethod
    def new_object(self, cls: Any, args: Any) -> Any: ...
    @abstractmethod
    def new_object_ex(self, cls: Any, args: Any, kwargs: Any) -> Any: ...
    @abstractmethod
    def instantiate(self, cls: Any, args: list[Any]) -> Any: ...
    @abstractmethod
    def extension(self, code: int) -> Any: ...
    @abstractmethod
    def persistent_id(self, pid: Any) -> Any: ...

    # -- the stack, marks, memo and stream opcodes -----------------------------------------

    def op_MARK(self) -> None:
        self.marks.append(len(self.stack))

    def op_STOP(self) -> bool:
        self.result = self.pop()
        return True

    def op_POP(self) -> None:
        if self.marks and self.marks[-1] == len(self.stack):
            self.marks.pop()  # POP on a mark pops the mark, as in the C unpickler
        else:
            self.pop()

    def op_POP_MARK(self) -> None:
        del self.stack[self.marker():]

    def op_DUP(self) -> None:
        self.stack.append(self.top())

    def op_PROTO(self) -> None:
        proto = self.byte()
        if proto > pickle.HIGHEST_PROTOCOL:
            self.fail(f"unsupported protocol {proto}")
        self.proto = proto

    def op_FRAME(self) -> None:
        size = self.uint(8)
        if size > self.total - self.base - self.pos:
            self.fail("frame runs past the end of the stream")

    def op_GET(self) -> None:
        self.stack.append(self.memo_get(self.c_index(self.nonempty_line())))

    def op_BINGET(self) -> None:
        self.stack.append(self.memo_get(self.byte()))

    def op_LONG_BINGET(self) -> None:
        self.stack.append(self.memo_get(self.uint(4)))

    def op_PUT(self) -> None:
        text = self.nonempty_line()
        self.top()
        self.memo_put(self.c_index(text))

    def op_BINPUT(self) -> None:
        self.memo_put(self.byte())

    def op_LONG_BINPUT(self) -> None:
        self.memo_put(self.uint(4))

    def op_MEMOIZE(self) -> None:
        self.memo_put(len(self.memo))

    # -- scalars -----------------------------------------------------------------------------

    def op_NONE(self) -> None:
        self.stack.append(None)

    def op_NEWTRUE(self) -> None:
        self.stack.append(True)

    def op_NEWFALSE(self) -> None:
        self.stack.append(False)

    def op_BININT(self) -> None:
        self.stack.append(self.made(self.sint4()))

    def op_BININT1(self) -> None:
        self.stack.append(self.made(self.byte()))

    def op_BININT2(self) -> None:
        self.stack.append(self.made(self.uint(2)))

    def op_BINFLOAT(self) -> None:
        self.stack.append(self.made(self.double()))

    def op_INT(self) -> None:
        self.stack.append(self.int_line(self.nonempty_line()))

    def op_LONG(self) -> None:
        self.stack.append(self.long_line(self.nonempty_line()))

    def op_FLOAT(self) -> None:
        self.stack.append(self.float_line(self.nonempty_line()))

    def counted_value(self, nbytes: int, make: Callable[[Any], Any]) -> None:
        start, end = self.counted(nbytes)
        self.stack.append(self.decoded(make, start, end))

    def counted_text(self, nbytes: int, decode: Callable[[Any], str], per_char: int) -> None:
        start, end = self.counted(nbytes)
        self.stack.append(self.text(decode, start, end, per_char))

    def op_LONG1(self) -> None:
        self.counted_value(1, _long)

    def op_LONG4(self) -> None:
        size = self.sint4()
        if size < 0:
            self.fail("negative LONG4 length")
        start = self.take(size)
        self.stack.append(self.decoded(_long, start, start + size))

    def op_SHORT_BINBYTES(self) -> None:
        self.counted_value(1, bytes)

    def op_BINBYTES(self) -> None:
        self.counted_value(4, bytes)

    def op_BINBYTES8(self) -> None:
        self.counted_value(8, bytes)

    def op_BYTEARRAY8(self) -> None:
        self.counted_value(8, bytearray)

    def op_SHORT_BINUNICODE(self) -> None:  # the commonest string: counted(1), inline
        start = self.pos + 1
        end = start + self.byte()
        if end > self.end:
            self.fail("truncated argument")
        self.pos = end
        self.stack.append(self.text(_utf8, start, end, 4))

    def op_BINUNICODE(self) -> None:
        self.counted_text(4, _utf8, 4)

    def op_BINUNICODE8(self) -> None:
        self.counted_text(8, _utf8, 4)

    def op_SHORT_BINSTRING(self) -> None:
        self.counted_text(1, _ascii, 1)

    def op_BINSTRING(self) -> None:
        self.counted_text(4, _ascii, 1)

    def op_STRING(self) -> None:
        start, end = self.line_span()
        quote = self.data[start] if end - start >= 2 else None
        if quote not in (0x22, 0x27) or self.data[end - 1] != quote:
            self.fail("STRING argument not quoted")
        self.stack.append(self.text(_escaped, start, end, 4))

    def op_UNICODE(self) -> None:
        start, end = self.line_span()
        self.stack.append(self.text(_raw_unicode, start, end, 10))

    def op_NEXT_BUFFER(self) -> None:
        self.stack.append(self.next_buffer())

    def op_READONLY_BUFFER(self) -> None:
        self.stack[-1] = self.readonly(self.top())

    # -- containers ------------------------------------------------------------------------

    def op_EMPTY_TUPLE(self) -> None:
        self.stack.append(())

    def op_EMPTY_LIST(self) -> None:
        self.stack.append(self.made([]))

    def op_EMPTY_DICT(self) -> None:
        self.stack.append(self.made({}))

    def op_EMPTY_SET(self) -> None:
        self.stack.append(self.made(set()))

    def tuple_of(self, count: int) -> None:
        if len(self.stack) < count:
            self.fail("stack underflow")
        self.stack.append(self.collection(tuple, self.pop_items(len(self.stack) - count)))

    def op_TUPLE1(self) -> None:
        self.tuple_of(1)

    def op_TUPLE2(self) -> None:
        self.tuple_of(2)

    def op_TUPLE3(self) -> None:
        self.tuple_of(3)

    def op_TUPLE(self) -> None:
        self.stack.append(self.collection(tuple, self.pop_items(self.marker())))

    def op_FROZENSET(self) -> None:
        self.stack.append(self.collection(frozenset, self.pop_items(self.marker())))

    def op_LIST(self) -> None:
        self.stack.append(self.collection(list, self.pop_items(self.marker(), fenced=False)))

    def op_DICT(self) -> None:
        start = self.marker()
        if (len(self.stack) - start) % 2:
            self.fail("odd number of items for DICT")
        self.stack.append(self.collection(dict, self.pop_items(start, fenced=False)))

    def appends(self, x: int) -> None:
        target = self.target(x)
        if len(self.stack) > x:
            self.extend(target, self.pop_items(x))

    def op_APPEND(self) -> None:
        if len(self.stack) - 1 <= self.fence:
            self.fail("stack underflow")
        self.appends(len(self.stack) - 1)

    def op_APPENDS(self) -> None:
        self.appends(self.marker())

    def setitems(self, x: int) -> None:
        target = self.target(x)
        if len(self.stack) > x:
            if (len(self.stack) - x) % 2:
                self.fail("odd number of items for SETITEMS")
            self.set_items(target, self.pop_items(x))

    def op_SETITEM(self) -> None:
        self.setitems(len(self.stack) - 2)

    def op_SETITEMS(self) -> None:
        self.setitems(self.marker())

    def op_ADDITEMS(self) -> None:
        x = self.marker()
        target = self.target(x)
        if len(self.stack) > x:
            self.add_items(target, self.pop_items(x))

    def op_BUILD(self) -> None:
        if len(self.stack) - 2 < self.fence:
            self.fail("stack underflow")
        state = self.pop()
        self.build(self.stack[-1], state)  # the instance stays, the same object

    # -- globals and calls -------------------------------------------------------------------

    def op_GLOBAL(self) -> None:
        self.stack.append(self.find_class(*self.names("utf-8")))

    def op_STACK_GLOBAL(self) -> None:
        name = self.pop()
        module = self.pop()
        self.stack.append(self.find_class(module, name))

    def op_INST(self) -> None:
        start = self.marker()
        cls = self.find_class(*self.names("ascii"))
        self.stack.append(self.instantiate(cls, self.pop_items(start)))

    def op_OBJ(self) -> None:
        start = self.marker()
        if len(self.stack) - start < 1:
            self.fail("stack underflow")
        args = self.pop_items(start + 1)
        self.stack.append(self.instantiate(self.pop(), args))

    def op_REDUCE(self) -> None:
        args = self.pop()
        func = self.pop()
        self.stack.append(self.reduce(func, args))

    def op_NEWOBJ(self) -> None:
        args = self.pop()
        cls = self.pop()
        self.stack.append(self.new_object(cls, args))

    def op_NEWOBJ_EX(self) -> None:
        kwargs = self.pop()
        args = self.pop()
        cls = self.pop()
        self.stack.append(self.new_object_ex(cls, args, kwargs))

    def op_EXT1(self) -> None:
        self.stack.append(self.extension(self.uint(1)))

    def op_EXT2(self) -> None:
        self.stack.append(self.extension(self.uint(2)))

    def op_EXT4(self) -> None:
        self.stack.append(self.extension(self.sint4()))

    def op_PERSID(self) -> None:
        # the C unpickler refuses a line that is not ASCII; neither machine loads an id
        self.stack.append(self.persistent_id(self.line().decode("ascii", "replace")))

    def op_BINPERSID(self) -> None:
        self.stack.append(self.persistent_id(self.pop()))


# -- what a counted or line argument's bytes make -------------------------------------------

def _utf8(raw: Any) -> str:
    return str(raw, "utf-8", "surrogatepass")


def _ascii(raw: Any) -> str:
    return str(raw, "ascii")


def _raw_unicode(raw: Any) -> str:
    return str(raw, "raw-unicode-escape")


def _escaped(quoted: Any) -> str:
    return codecs.escape_decode(quoted[1:-1])[0].decode("ascii")


def _long(raw: Any) -> int:
    return int.from_bytes(raw, "little", signed=True)
