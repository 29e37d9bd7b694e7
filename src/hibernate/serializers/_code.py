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
It is checked at save time by compiling it and comparing the bytecode, so an edited script
never supplies a different function.

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


@functools.lru_cache(maxsize=64)
def _compiled(filename: str, text: str) -> Index | None:
    """Every code object compiled from ``text``, by (name, qualified name, first line);
    None when the text does not compile on this Python. The text is compiled whole (a
    script) and statement by statement (how IPython compiles a cell), which can give other
    bytecode for the same function: both are candidates."""
    try:
        tree = ast.parse(text, filename)
        tops = [compile(text, filename, "exec", dont_inherit=True)]
        tops += [compile(ast.Module(body=[node], type_ignores=[]), filename, "exec",
                         dont_inherit=True) for node in tree.body if len(tree.body) > 1]
    except (SyntaxError, ValueError, RecursionError):
        return None
    found: Index = {}
    todo = tops
    while todo:
        code = todo.pop(0)
        found.setdefault((code.co_name, _qualname(code), code.co_firstlineno), []).append(code)
        todo.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    return found


@functools.lru_cache(maxsize=64)
def _joined(lines: tuple[str, ...]) -> str:
    return "".join(lines)  # one str object per text: a pickle stream holds it once


def _source_of(code: types.CodeType) -> tuple[str, str, str, int] | None:
    """(filename, source text, qualified name, first line) when the source ``code`` was
    compiled from is known and compiles to the same bytecode here; else None."""
    filename = code.co_filename
    lines = linecache.getlines(filename)
    if not lines:
        return None
    text = _joined(tuple(lines))
    index = _compiled(filename, text)
    if index is None:
        return None
    twins = index.get((code.co_name, _qualname(code), code.co_firstlineno), [])
    if not any(t.co_code == code.co_code for t in twins):  # edited since: not its source
        return None
    return filename, text, _qualname(code), code.co_firstlineno


def code_reduce(code: types.CodeType) -> tuple[object, ...]:
    """The reduction of a code object: its bytecode and, where known, its source."""
    return (_make_code, (MAGIC, TAG, code.co_name, marshal.dumps(code), _source_of(code)))


def _make_code(magic: bytes, tag: str, name: str, bytecode: bytes,
               source: tuple[str, str, str, int] | None) -> types.CodeType:
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
    filename, text, qualname, firstlineno = source
    index = _compiled(filename, text)
    found = (index or {}).get((name, qualname, firstlineno))
    if not found:  # an older Python has no co_qualname: match on name and line
        found = next((c for (n, _, line), c in (index or {}).items()
                      if n == name and line == firstlineno), None)
    code = found[0] if found else None
    if code is None:
        raise CodeVersionError(f"{qualname!r} was saved on {tag}; its saved source does not "
                               f"compile to it on {TAG}")
    rebuilt = _rebuilt.get()
    if rebuilt is not None:
        rebuilt.append((qualname, tag))
    return code


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
