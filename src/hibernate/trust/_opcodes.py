"""What a pickle would import and call, read from its opcodes without executing anything.

Used by ``hibernate trust`` to show a file's pickles before the user trusts them. The stream
runs through the pickle machine (_machine.py: every opcode of protocols 0-5 read the way
CPython's C unpickler reads it, with the same stack, mark stack, memo and checks) with
symbolic values: a value on the stack is either a string whose text is known or "something
else" (a number, a container, the result of a call...). Every global that loading would
look up is reported, with the Python 2 names mapped as the unpickler maps them below
protocol 3:

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
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

from ._machine import MalformedPickle, PickleMachine
from ._window import WINDOW

__all__ = ["UNKNOWN", "MalformedPickle", "PickleMachine", "referenced_globals",
           "streamed_globals"]

UNKNOWN = ("?", "?")
_MAX_NAME = 1 << 16  # longer strings are not followed as names: reported as unknown
# a counted argument too long for the window is one the scan would not have read
assert WINDOW > 4 * _MAX_NAME


class _Other:
    def __repr__(self) -> str:
        return "<not a known string>"


OTHER: Any = _Other()


class _Scan(PickleMachine):
    """A value is a known string or not (OTHER, or a constant the machine pushed itself);
    every global looked up is counted in ``found``."""

    def __init__(self, stream: bytes | bytearray | memoryview) -> None:
        super().__init__(stream)
        self.found: Counter[tuple[str, str]] = Counter()

    def malformed(self, reason: str) -> NoReturn:
        raise MalformedPickle(reason, self.found)

    def mapped(self, module: str, name: str) -> tuple[str, str]:
        """(module, name) as find_class imports it: Python 2 names are mapped below
        protocol 3, as the unpickler does (fix_imports)."""
        if self.proto < 3:
            if (module, name) in _compat_pickle.NAME_MAPPING:
                return _compat_pickle.NAME_MAPPING[(module, name)]
            if module in _compat_pickle.IMPORT_MAPPING:
                return _compat_pickle.IMPORT_MAPPING[module], name
        return module, name

    def find_class(self, module: Any, name: Any) -> Any:
        if isinstance(module, str) and isinstance(name, str):
            self.found[self.mapped(module, name)] += 1
        else:
            self.found[UNKNOWN] += 1
        return OTHER

    def extension(self, code: int) -> Any:
        if code <= 0:
            self.fail("EXT code <= 0")
        self.found[UNKNOWN] += 1  # whatever the loading process registered under it
        return OTHER

    def persistent_id(self, pid: Any) -> Any:
        self.found[UNKNOWN] += 1  # the loader's persistent_load decides
        return OTHER

    def text(self, decode: Callable[[Any], str], start: int, end: int, per_char: int) -> Any:
        """A known string, or OTHER when the unpickler would not make one of it (or it is
        too long to be a name)."""
        if end - start > per_char * _MAX_NAME:
            return OTHER
        try:
            value = decode(self.data[start:end])
        except Exception:  # the unpickler would fail here (or warn, and fail under -W error)
            return OTHER
        return value if len(value) <= _MAX_NAME else OTHER

    def unknown(self, *args: Any, **kwargs: Any) -> Any:
        """Only strings are followed: numbers, bytes, containers and what a call returns
        (a string too, maybe) are unknown."""
        return OTHER

    made = decoded = int_line = long_line = float_line = collection = unknown
    reduce = new_object = new_object_ex = instantiate = next_buffer = readonly = unknown

    def skipped(self, name: str, size: int) -> Any:
        """A counted argument longer than ``run_pieces``'s window: bytes, a long integer or
        a string too long to be a name, all unknown whatever they hold."""
        return OTHER

    def unchanged(self, *args: Any, **kwargs: Any) -> None:
        """A container filled or an object's state set: it stays what it was."""

    extend = set_items = add_items = build = unchanged


def referenced_globals(stream: bytes | bytearray | memoryview) -> Counter[tuple[str, str]]:
    """(module, name) -> how often loading the pickle looks it up (``("?", "?")`` for each
    lookup whose name cannot be known). Raises ``MalformedPickle`` (a ValueError) on a
    stream the unpickler would not read to its STOP, or with bytes after it."""
    scan = _Scan(stream)
    scan.run()
    return scan.found


def streamed_globals(pieces: Iterable[bytes | bytearray | memoryview], total: int
                     ) -> Counter[tuple[str, str]]:
    """``referenced_globals`` of a stream of ``total`` bytes handed over in pieces (a blob's
    chunks), holding about a piece and ``WINDOW`` bytes: the same answer, except that a line
    argument longer than ``WINDOW`` (protocol 0 only) is refused (``MalformedPickle``)."""
    scan = _Scan(b"")
    scan.run_pieces(pieces, total)
    return scan.found
