"""Code objects of functions and classes saved by value: bytecode for the Python that
compiled it, source for every other one.

Bytecode belongs to one Python minor version (its magic number). Run on another, it can
crash the interpreter (3.11 bytecode on 3.12 segfaulted on the first call) or fail at
random; so a code object is saved as its marshalled bytecode *and*, when the source it was
compiled from is known and still matches, that source. A load on the same bytecode version
uses the bytecode; on another it compiles the source and takes the code object with the
same name, qualified name and first line (never running the source, only compiling it);
with no source it raises ``CodeVersionError`` for that entry, naming both versions.

Source comes from ``linecache``: the script file, or the cell an IPython shell registered.
It is checked at save time by compiling it and comparing the code (bytecode, names and
constants), so an edited script never supplies a different function; two functions with the
same name on the same line (``add, sub = lambda ..., lambda ...``) are told apart by their
order.

Non-goals: translating bytecode between versions; functions defined by ``exec`` of a
string (no source) come back on the same Python only.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import importlib.util
import linecache
import marshal
import sys
import types
from collections.abc import Iterator
from contextvars import ContextVar

__all__ = ["CodeVersionError", "code_reduce", "rebuilt_from_source"]

MAGIC = importlib.util.MAGIC_NUMBER
TAG = sys.implementation.cache_tag or "unknown"  # "cpython-311"

# While a load is recording: (qualified name, bytecode tag it was saved with) of each code
# object rebuilt from source.
_rebuilt: ContextVar[list[tuple[str, str]] | None] = ContextVar("hibernate_rebuilt",
                                                                 default=None)


class CodeVersionError(RuntimeError):
    """A function or class saved by value cannot be rebuilt on this Python."""


def _qualname(code: types.CodeType) -> str:
    return getattr(code, "co_qualname", code.co_name)


Index = dict[tuple[str, str, int], list[types.CodeType]]
Source = tuple[str, str, str, int, int, int]  # file, text, qualname, first line, mode, ordinal


def _index(top: types.CodeType) -> Index:
    """Every code object under ``top`` by (name, qualified name, first line), in the order a
    breadth-first walk of the constants meets them (source order, on every version)."""
    found: Index = {}
    todo = [top]
    while todo:
        code = todo.pop(0)
        found.setdefault((code.co_name, _qualname(code), code.co_firstlineno), []).append(code)
        todo.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    return found


@functools.lru_cache(maxsize=64)
def _compiled(filename: str, text: str) -> tuple[Index, Index] | None:
    """The code objects compiled from ``text`` whole (a script; mode 0) and statement by
    statement (how IPython compiles a cell; mode 1), each indexed; None when the text does
    not compile on this Python."""
    try:
        tree = ast.parse(text, filename)
        whole = compile(text, filename, "exec", dont_inherit=True)
        parts = [compile(ast.Module(body=[node], type_ignores=[]), filename, "exec",
                         dont_inherit=True) for node in tree.body]
    except (SyntaxError, ValueError, RecursionError):
        return None
    by_statement: Index = {}
    for part in parts:
        for key, codes in _index(part).items():
            by_statement.setdefault(key, []).extend(codes)
    return _index(whole), by_statement


def _same(a: types.CodeType, b: types.CodeType) -> bool:
    """The same code: bytecode, names and constants (nested code compared the same way), so
    a source edited only in a constant is not taken for the code that was saved."""
    if (a.co_code, a.co_names, a.co_varnames, a.co_freevars) != (
            b.co_code, b.co_names, b.co_varnames, b.co_freevars):
        return False
    if len(a.co_consts) != len(b.co_consts):
        return False
    for x, y in zip(a.co_consts, b.co_consts):
        if isinstance(x, types.CodeType) and isinstance(y, types.CodeType):
            if not _same(x, y):
                return False
        elif type(x) is not type(y) or x != y:
            return False
    return True


@functools.lru_cache(maxsize=64)
def _joined(lines: tuple[str, ...]) -> str:
    return "".join(lines)  # one str object per text: a pickle stream holds it once


def _source_of(code: types.CodeType) -> Source | None:
    """Where ``code`` is in the source it was compiled from, when that source is known and
    compiles to the very same code here: (filename, text, qualified name, first line, mode,
    ordinal among the code objects with that name and first line). Else None."""
    filename = code.co_filename
    lines = linecache.getlines(filename)
    if not lines:
        return None
    text = _joined(tuple(lines))
    indexes = _compiled(filename, text)
    if indexes is None:
        return None
    key = (code.co_name, _qualname(code), code.co_firstlineno)
    for mode, index in enumerate(indexes):
        for ordinal, twin in enumerate(index.get(key, [])):
            if _same(twin, code):
                return filename, text, key[1], key[2], mode, ordinal
    return None  # edited since, or compiled another way: not its source


def code_reduce(code: types.CodeType) -> tuple[object, ...]:
    """The reduction of a code object: its bytecode and, where known, its source."""
    return (_make_code, (MAGIC, TAG, code.co_name, marshal.dumps(code), _source_of(code)))


def _make_code(magic: bytes, tag: str, name: str, bytecode: bytes,
               source: Source | None) -> types.CodeType:
    """Rebuild a code object: from its bytecode on the Python that compiled it, from its
    source on any other."""
    if magic == MAGIC:
        loaded = marshal.loads(bytecode)
        if not isinstance(loaded, types.CodeType):
            raise TypeError("saved bytecode is not a code object")
        return loaded
    if source is None:
        raise CodeVersionError(
            f"{name!r} was saved by value as bytecode for {tag} with no source to rebuild it "
            f"from; this is {TAG}: load it with that Python, or define it again")
    filename, text, qualname, firstlineno, mode, ordinal = source
    indexes = _compiled(filename, text)
    index = indexes[mode] if indexes is not None and mode in (0, 1) else {}
    found = index.get((name, qualname, firstlineno))
    if not found:  # an older Python has no co_qualname: match on name and line
        found = next((c for (n, _, line), c in index.items()
                      if n == name and line == firstlineno), None)
    if not found or not 0 <= ordinal < len(found):
        raise CodeVersionError(f"{qualname!r} was saved on {tag}; its saved source does not "
                               f"compile to it on {TAG}")
    rebuilt = _rebuilt.get()
    if rebuilt is not None:
        rebuilt.append((qualname, tag))
    return found[ordinal]


@contextlib.contextmanager
def rebuilt_from_source() -> Iterator[list[tuple[str, str]]]:
    """While active, collects (qualified name, saved bytecode tag) of each code object a
    load rebuilt from source because it was saved on another Python."""
    found: list[tuple[str, str]] = []
    token = _rebuilt.set(found)
    try:
        yield found
    finally:
        _rebuilt.reset(token)
