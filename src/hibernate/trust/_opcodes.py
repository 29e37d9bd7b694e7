"""What a pickle would import and call, read from its opcodes without executing anything.

Used by ``hibernate trust`` to show a file's pickles before the user trusts them. The stream
runs through a symbolic pickle machine (``PickleMachine``) that reads every opcode of
protocols 0-5 the way CPython's C unpickler does: the same argument decoding, the same
stack, mark stack ("fence") and memo, the same underflow checks. A value on the machine's
stack is either a string whose text is known or "something else" (a number, a container,
the result of a call...). Every global that loading would look up is reported, with the
Python 2 names mapped as the unpickler maps them below protocol 3:

- ``GLOBAL`` and ``INST`` arguments;
- ``STACK_GLOBAL``'s two operands, wherever they came from (pushed by any string opcode,
  duplicated, fetched from the memo, left behind by ``POP``/``POP_MARK``...); when either
  is not a string whose text is known (a call's result, a global's value), ``("?", "?")``;
- ``EXT1``/``EXT2``/``EXT4`` (the copyreg registry is the loading process's) and persistent
  ids: ``("?", "?")``.

The scan never guesses in the file's favour. A stream that the unpickler would stop at
(an unknown opcode, a truncated argument, a stack, mark or memo fault, a missing STOP) or
that goes on after its STOP raises ``MalformedPickle``, a ValueError whose ``found`` holds
(and whose message names) every global looked up before the fault: the unpickler would
have run those before failing. Where the outcome depends on the objects themselves (what a
call returns, a type check, a string the unpickler could not decode) the machine goes on
with an unknown value: it may name more than a load would, never less. A test runs it
against the C unpickler on thousands of random streams.

Non-goals: deciding safety. The restricted unpickler (see _restricted.py, which runs the
same machine with real values) is what enforces.
"""

from __future__ import annotations

import _compat_pickle
import codecs
import pickle
import pickletools
import re
import struct
import sys
from collections import Counter
from collections.abc import Callable
from typing import Any, ClassVar, NoReturn

__all__ = ["UNKNOWN", "MalformedPickle", "PickleMachine", "referenced_globals"]

UNKNOWN = ("?", "?")

# opcode byte -> opcode name, for every opcode of protocols 0-5
OPCODE_NAMES: dict[int, str] = {op.code.encode("latin-1")[0]: op.name
                                for op in pickletools.opcodes}
_NEWLINE = re.compile(b"\n")
_DOUBLE = struct.Struct(">d")
_MAX_NAME = 1 << 16  # longer strings are not followed as names: reported as unknown


class MalformedPickle(pickle.UnpicklingError, ValueError):
    """The stream is not exactly one pickle the unpickler would read to its STOP."""

    def __init__(self, reason: str, found: Counter[tuple[str, str]] | None = None) -> None:
        self.reason = reason
        self.found: Counter[tuple[str, str]] = Counter(found or ())
        if self.found:
            names = ", ".join(f"{m}.{n}" for m, n in sorted(self.found))
            reason = f"names {names} before: {reason}"
        super().__init__(reason)


class PickleMachine:
    """One pickle stream read the way the C unpickler reads it: argument decoding, the
    stack, the mark stack and the memo, with their checks. Subclasses give the values: each
    defines ``op_<NAME>`` for every opcode name (see ``OPCODE_NAMES``)."""

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
        self.pos = 0
        self.at = 0  # where the current opcode starts
        self.stack: list[Any] = []
        self.marks: list[int] = []
        self.memo: dict[int, Any] = {}
        self.proto = 0
        self.result: Any = None

    # -- running ---------------------------------------------------------------------------

    def fail(self, reason: str) -> NoReturn:
        raise MalformedPickle(f"{reason} (opcode at byte {self.at})")

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
        if self.pos != end:
            extra = end - self.pos
            raise MalformedPickle(f"{extra} byte{'s' if extra > 1 else ''} after its STOP "
                                  f"(at byte {self.pos - 1})")
        return self.result

    # -- arguments -------------------------------------------------------------------------

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
        start = self.take(n)
        return int.from_bytes(self.data[start:start + n], "little")

    def sint4(self) -> int:
        start = self.take(4)
        return int.from_bytes(self.data[start:start + 4], "little", signed=True)

    def double(self) -> float:
        start = self.take(8)
        return float(_DOUBLE.unpack_from(self.data, start)[0])

    def counted(self, nbytes: int) -> tuple[int, int]:
        """A length of ``nbytes`` bytes, then that many bytes: their (start, end)."""
        size = self.byte() if nbytes == 1 else self.uint(nbytes)
        if size > sys.maxsize:
            self.fail("argument length exceeds the maximum size")
        start = self.take(size)
        return start, start + size

    def line(self) -> bytes:
        """The bytes up to the next newline (which is consumed, not returned)."""
        found = _NEWLINE.search(self.data, self.pos)
        if found is None:
            self.fail("truncated line argument")
        text = bytes(self.data[self.pos:found.start()])
        self.pos = found.end()
        return text

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

    def mapped(self, module: str, name: str) -> tuple[str, str]:
        """(module, name) as find_class imports it: Python 2 names are mapped below
        protocol 3, as the unpickler does (fix_imports)."""
        if self.proto < 3:
            if (module, name) in _compat_pickle.NAME_MAPPING:
                return _compat_pickle.NAME_MAPPING[(module, name)]
            if module in _compat_pickle.IMPORT_MAPPING:
                return _compat_pickle.IMPORT_MAPPING[module], name
        return module, name

    # -- stack, marks and memo (the C unpickler's checks) ---------------------------------

    @property
    def fence(self) -> int:
        return self.marks[-1] if self.marks else 0

    def push(self, value: Any) -> None:
        self.stack.append(value)

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
        self.memo[index] = self.top()

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
        self.push(self.top())

    def op_PROTO(self) -> None:
        proto = self.byte()
        if proto > pickle.HIGHEST_PROTOCOL:
            self.fail(f"unsupported protocol {proto}")
        self.proto = proto

    def op_FRAME(self) -> None:
        size = self.uint(8)
        if size > self.end - self.pos:
            self.fail("frame runs past the end of the stream")

    def op_GET(self) -> None:
        self.push(self.memo_get(self.c_index(self.nonempty_line())))

    def op_BINGET(self) -> None:
        self.stack.append(self.memo_get(self.byte()))

    def op_LONG_BINGET(self) -> None:
        self.push(self.memo_get(self.uint(4)))

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


class _Other:
    def __repr__(self) -> str:
        return "<not a known string>"


OTHER: Any = _Other()


def _text(decode: Callable[[], str]) -> Any:
    """A known string, or OTHER when the unpickler would not make one of it."""
    try:
        value = decode()
    except Exception:  # the unpickler would fail here (or warn, and fail under -W error)
        return OTHER
    return value if len(value) <= _MAX_NAME else OTHER


class _Scan(PickleMachine):
    """Values are known strings or OTHER; every global looked up is counted in ``found``."""

    def __init__(self, stream: bytes | bytearray | memoryview) -> None:
        super().__init__(stream)
        self.found: Counter[tuple[str, str]] = Counter()

    def fail(self, reason: str) -> NoReturn:
        raise MalformedPickle(f"{reason} (opcode at byte {self.at})", self.found)

    def run(self) -> Any:
        try:
            return super().run()
        except MalformedPickle as e:
            if e.found != self.found:
                raise MalformedPickle(e.reason, self.found) from None
            raise

    def look_up(self, module: Any, name: Any) -> None:
        if isinstance(module, str) and isinstance(name, str):
            self.found[self.mapped(module, name)] += 1
        else:
            self.found[UNKNOWN] += 1

    def other(self) -> None:
        self.stack.append(OTHER)

    def skip_counted(self, nbytes: int) -> None:
        self.counted(nbytes)
        self.stack.append(OTHER)

    def utf8(self, nbytes: int) -> None:
        start, end = self.counted(nbytes)
        data = self.data
        self.push(OTHER if end - start > 4 * _MAX_NAME
                  else _text(lambda: str(data[start:end], "utf-8", "surrogatepass")))

    def ascii(self, nbytes: int) -> None:
        start, end = self.counted(nbytes)
        data = self.data
        self.push(OTHER if end - start > _MAX_NAME
                  else _text(lambda: str(data[start:end], "ascii")))

    # scalars: only strings are followed
    op_NONE = op_NEWTRUE = op_NEWFALSE = op_NEXT_BUFFER = other
    op_EMPTY_TUPLE = op_EMPTY_LIST = op_EMPTY_DICT = op_EMPTY_SET = other

    def op_BININT(self) -> None:
        self.take(4)
        self.other()

    def op_BININT1(self) -> None:
        self.take(1)
        self.other()

    def op_BININT2(self) -> None:
        self.take(2)
        self.other()

    def op_BINFLOAT(self) -> None:
        self.take(8)
        self.other()

    def op_INT(self) -> None:
        self.nonempty_line()
        self.other()

    op_LONG = op_FLOAT = op_INT

    def op_LONG1(self) -> None:
        self.take(self.uint(1))
        self.other()

    def op_LONG4(self) -> None:
        size = self.sint4()
        if size < 0:
            self.fail("negative LONG4 length")
        self.take(size)
        self.other()

    def op_SHORT_BINBYTES(self) -> None:
        self.skip_counted(1)

    def op_BINBYTES(self) -> None:
        self.skip_counted(4)

    def op_BINBYTES8(self) -> None:
        self.skip_counted(8)

    op_BYTEARRAY8 = op_BINBYTES8

    def op_SHORT_BINUNICODE(self) -> None:
        self.utf8(1)

    def op_BINUNICODE(self) -> None:
        self.utf8(4)

    def op_BINUNICODE8(self) -> None:
        self.utf8(8)

    def op_SHORT_BINSTRING(self) -> None:
        self.ascii(1)

    def op_BINSTRING(self) -> None:
        self.ascii(4)

    def op_STRING(self) -> None:
        text = self.line()
        if not (len(text) >= 2 and text[0] == text[-1] and text[:1] in (b"'", b'"')):
            self.fail("STRING argument not quoted")
        self.push(OTHER if len(text) > 4 * _MAX_NAME
                  else _text(lambda: codecs.escape_decode(text[1:-1])[0].decode("ascii")))

    def op_UNICODE(self) -> None:
        text = self.line()
        self.push(OTHER if len(text) > 10 * _MAX_NAME
                  else _text(lambda: str(text, "raw-unicode-escape")))

    def op_READONLY_BUFFER(self) -> None:
        self.top()
        self.stack[-1] = OTHER

    # containers: their items are dropped (no container is ever a string)
    def tuple_of(self, count: int) -> None:
        if len(self.stack) < count:
            self.fail("stack underflow")
        self.pop_items(len(self.stack) - count)
        self.other()

    def op_TUPLE1(self) -> None:
        self.tuple_of(1)

    def op_TUPLE2(self) -> None:
        self.tuple_of(2)

    def op_TUPLE3(self) -> None:
        self.tuple_of(3)

    def op_TUPLE(self) -> None:
        self.pop_items(self.marker())
        self.other()

    op_FROZENSET = op_TUPLE

    def op_LIST(self) -> None:
        self.pop_items(self.marker(), fenced=False)
        self.other()

    def op_DICT(self) -> None:
        start = self.marker()
        if (len(self.stack) - start) % 2:
            self.fail("odd number of items for DICT")
        self.pop_items(start, fenced=False)
        self.other()

    def appends(self, x: int) -> None:
        self.target(x)
        del self.stack[x:]

    def op_APPEND(self) -> None:
        if len(self.stack) - 1 <= self.fence:
            self.fail("stack underflow")
        self.appends(len(self.stack) - 1)

    def op_APPENDS(self) -> None:
        self.appends(self.marker())

    def setitems(self, x: int) -> None:
        self.target(x)
        if (len(self.stack) - x) % 2:
            self.fail("odd number of items for SETITEMS")
        del self.stack[x:]

    def op_SETITEM(self) -> None:
        self.setitems(len(self.stack) - 2)

    def op_SETITEMS(self) -> None:
        self.setitems(self.marker())

    def op_ADDITEMS(self) -> None:
        self.appends(self.marker())

    # calls: the result may be anything, a string too
    def op_BUILD(self) -> None:
        if len(self.stack) - 2 < self.fence:
            self.fail("stack underflow")
        self.pop()  # the state; the instance stays, the same object

    def op_REDUCE(self) -> None:
        self.pop()
        self.pop()
        self.other()

    op_NEWOBJ = op_REDUCE

    def op_NEWOBJ_EX(self) -> None:
        self.pop()
        self.op_REDUCE()

    def op_OBJ(self) -> None:
        start = self.marker()
        if len(self.stack) - start < 1:
            self.fail("stack underflow")
        self.pop_items(start + 1)
        self.pop()
        self.other()

    def op_INST(self) -> None:
        start = self.marker()
        self.look_up(*self.names("ascii"))
        self.pop_items(start)
        self.other()

    # globals
    def op_GLOBAL(self) -> None:
        self.look_up(*self.names("utf-8"))
        self.other()

    def op_STACK_GLOBAL(self) -> None:
        name = self.pop()
        module = self.pop()
        self.look_up(module, name)
        self.other()

    def extension(self, code: int) -> None:
        if code <= 0:
            self.fail("EXT code <= 0")
        self.found[UNKNOWN] += 1  # whatever the loading process registered under it
        self.other()

    def op_EXT1(self) -> None:
        self.extension(self.uint(1))

    def op_EXT2(self) -> None:
        self.extension(self.uint(2))

    def op_EXT4(self) -> None:
        self.extension(self.sint4())

    def op_PERSID(self) -> None:
        self.line()
        self.found[UNKNOWN] += 1  # the loader's persistent_load decides
        self.other()

    def op_BINPERSID(self) -> None:
        self.pop()
        self.found[UNKNOWN] += 1
        self.other()


def referenced_globals(stream: bytes | bytearray | memoryview) -> Counter[tuple[str, str]]:
    """(module, name) -> how often loading the pickle looks it up (``("?", "?")`` for each
    lookup whose name cannot be known). Raises ``MalformedPickle`` (a ValueError) on a
    stream the unpickler would not read to its STOP, or with bytes after it."""
    scan = _Scan(stream)
    scan.run()
    return scan.found
