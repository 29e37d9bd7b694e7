"""The constructors a data-only load may call, and the argument forms each accepts.

``ALLOWED`` names them: builtin containers and scalars, datetime types, ``Decimal``,
``OrderedDict``, ``hibernate.Placeholder`` and hibernate's plain-data constructors of arrays,
frames and random generators,
never a callable that runs anything else.
Each has a check (``check_for``) that refuses what the pickler never writes (``str`` of a
non-string is ``repr``; codecs other than utf-8, ascii and latin-1; integers of more than
``MAX_DIGITS`` digits...) and charges, before the call, what the call will make to the
loader's budget (``Budget``: see _restricted.py).
"""

from __future__ import annotations

import datetime
import decimal
import importlib
import pickle
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from typing import Any, NoReturn, Protocol

__all__ = ["ALLOWED", "MAX_DIGITS", "Budget", "RefusedData", "RefusedGlobal", "check_for",
           "kind", "refuse"]

ALLOWED: frozenset[tuple[str, str]] = frozenset(
    [("builtins", n) for n in ("bool", "bytearray", "bytes", "complex", "dict", "float",
                               "frozenset", "int", "list", "range", "set", "slice", "str",
                               "tuple")]
    + [("datetime", n) for n in ("date", "datetime", "time", "timedelta", "timezone")]
    + [("decimal", "Decimal"), ("collections", "OrderedDict")]
    # two strings, bounded; it runs nothing (see hibernate/_placeholder.py)
    + [("hibernate._placeholder", "Placeholder")]
    # a plain-dtype array as a view of bytes already read (see serializers/_numpy.py: it
    # checks the dtype is plain data and the shape matches the bytes)
    + [("hibernate.serializers._numpy", "portable_array")]
    # a frame, series or index read from plain data and bytes as a file's are (see
    # serializers/_pandas.py: every length, offset and code checked, Arrow data validated)
    + [("hibernate.serializers._pandas", "portable_pandas")]
    # a numpy random generator of a known kind set to a state of numbers (numpy checks it)
    + [("hibernate.serializers._numpy", "portable_random")]
    # an Arrow value read from an IPC stream as a file's are (validated, plain types only)
    + [("hibernate.serializers._arrow", "portable_arrow")]
)

MAX_DIGITS = 5000
_TEXT = 1 << 12  # datetime and timezone arguments
_DICT_ITEM = 100  # dict/OrderedDict bytes per item, before the call
_SET_ITEM = 64
_SEQ_ITEM = 8
_CODECS = frozenset({"utf-8", "utf8", "ascii", "latin-1", "latin1", "iso-8859-1"})
_ERRORS = frozenset({"strict", "surrogatepass", "surrogateescape", "replace", "ignore",
                     "backslashreplace"})
_NUMBERS = (int, bool, float)


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle names a global that a data-only load does not allow."""

    def __init__(self, module: str, name: str) -> None:
        super().__init__(f"needs code: {module}.{name}")
        self.module, self.name = module, name


class RefusedData(pickle.UnpicklingError):
    """The pickle asks for more than a data-only load allows (size, hashing, a form of
    constructor call the pickler never writes): the entry fails."""


def refuse(why: str) -> NoReturn:
    raise RefusedData(f"refused: {why}")


def kind(x: object) -> str:
    return type(x).__name__


class Budget(Protocol):
    """What the checks draw from: the loader's allocation budget and key tracking."""

    def charge(self, nbytes: int, what: object) -> None: ...
    def length(self, x: object, what: str) -> int: ...
    def keys(self, container: object | None, keys: Iterable[object]
             ) -> Counter[int] | None: ...


Check = Callable[[Budget, tuple[Any, ...]], "Counter[int] | None"]


def _arity(cls: str, args: tuple[Any, ...], most: int) -> None:
    if len(args) > most:
        refuse(f"{cls} with {len(args)} arguments")


def _codec(cls: str, args: tuple[Any, ...]) -> None:
    """(text or bytes, encoding[, errors]): only the plain codecs, strict-ish errors."""
    encoding = args[1]
    if type(encoding) is not str or encoding.lower().replace("_", "-") not in _CODECS:
        refuse(f"{cls} with an encoding other than utf-8, ascii or latin-1")
    if len(args) == 3 and (type(args[2]) is not str or args[2] not in _ERRORS):
        refuse(f"{cls} with an unusual error handler")


def _check_bytes(m: Budget, args: tuple[Any, ...]) -> None:
    _arity("bytes", args, 3)
    if not args:
        return
    x = args[0]
    if len(args) == 1:
        size = x if type(x) is int or type(x) is bool else m.length(x, "bytes")
        m.charge(max(0, size), "bytes")
    elif type(x) is str:
        _codec("bytes", args)
        m.charge(4 * len(x), "bytes")
    else:
        refuse("bytes of a non-string with an encoding")


def _check_str(m: Budget, args: tuple[Any, ...]) -> None:
    _arity("str", args, 3)
    if not args or (len(args) == 1 and type(args[0]) is str):
        return
    x = args[0]
    if len(args) == 1 or not isinstance(x, (bytes, bytearray, memoryview, pickle.PickleBuffer)):
        refuse(f"str of a {kind(x)}")  # str(x) is repr(x): unbounded for shared data
    _codec("str", args)
    m.charge(4 * m.length(x, "str"), "str")


def _check_int(m: Budget, args: tuple[Any, ...]) -> None:
    _arity("int", args, 2)
    if not args:
        return
    x = args[0]
    if len(args) == 1 and type(x) in _NUMBERS:
        return
    if type(x) not in (str, bytes, bytearray) or (len(args) == 2 and type(args[1]) is not int):
        refuse(f"int of a {kind(x)}")
    if len(x) > MAX_DIGITS:
        refuse(f"an integer of more than {MAX_DIGITS} digits")


def _check_float(m: Budget, args: tuple[Any, ...]) -> None:
    _arity("float", args, 1)
    if args and type(args[0]) not in (*_NUMBERS, str, bytes, bytearray):
        refuse(f"float of a {kind(args[0])}")


def _check_complex(m: Budget, args: tuple[Any, ...]) -> None:
    _arity("complex", args, 2)
    for x in args:
        if type(x) not in (*_NUMBERS, complex, str):
            refuse(f"complex of a {kind(x)}")


def _check_bool(m: Budget, args: tuple[Any, ...]) -> None:
    _arity("bool", args, 1)


def _sequence(item: int, cls: str) -> Check:
    def check(m: Budget, args: tuple[Any, ...]) -> None:
        _arity(cls, args, 1)
        if args:
            m.charge(item * m.length(args[0], cls), cls)
    return check


def _check_set(m: Budget, args: tuple[Any, ...]) -> Counter[int] | None:
    _arity("set", args, 1)
    if not args:
        return None
    m.charge(_SET_ITEM * m.length(args[0], "set"), "set")
    return m.keys(None, iter(args[0]))


def _check_dict(m: Budget, args: tuple[Any, ...]) -> Counter[int] | None:
    _arity("dict", args, 1)
    if not args:
        return None
    x = args[0]
    if type(x) is dict or type(x) is OrderedDict:
        keys = list(x)
    elif type(x) is list or type(x) is tuple:
        if not all((type(p) is tuple or type(p) is list) and len(p) == 2 for p in x):
            refuse("dict of something other than pairs")
        keys = [p[0] for p in x]
    else:
        refuse(f"dict of a {kind(x)}")
    m.charge(_DICT_ITEM * len(keys), "dict")
    return m.keys(None, keys)


def _check_range(m: Budget, args: tuple[Any, ...]) -> None:
    _arity("range", args, 3)
    if not all(type(x) is int or type(x) is bool for x in args):
        refuse("range of something other than integers")


def _check_slice(m: Budget, args: tuple[Any, ...]) -> None:
    _arity("slice", args, 3)
    if not all(x is None or type(x) is int or type(x) is bool for x in args):
        refuse("slice of something other than integers")


def _check_when(m: Budget, args: tuple[Any, ...]) -> None:
    _arity("a datetime type", args, 8)
    for x in args:
        if x is None or type(x) in _NUMBERS or type(x) in (datetime.timezone,
                                                           datetime.timedelta):
            continue
        if type(x) not in (str, bytes) or len(x) > _TEXT:
            refuse(f"a datetime type of a {kind(x)}")


def _check_decimal(m: Budget, args: tuple[Any, ...]) -> None:
    _arity("Decimal", args, 1)
    if args and type(args[0]) not in (*_NUMBERS, str, tuple, decimal.Decimal):
        refuse(f"Decimal of a {kind(args[0])}")


def _check_placeholder(m: Budget, args: tuple[Any, ...]) -> None:
    if len(args) != 2 or type(args[0]) is not str or type(args[1]) is not str:
        refuse("a Placeholder of something other than two strings")


def _check_array(m: Budget, args: tuple[Any, ...]) -> None:
    if (len(args) != 4 or type(args[0]) is not str or len(args[0]) > 32
            or type(args[1]) is not tuple or len(args[1]) > 64
            or not all(type(n) is int for n in args[1]) or args[2] not in ("C", "F")
            or not isinstance(args[3], (bytes, bytearray, memoryview, pickle.PickleBuffer))):
        refuse("an array of something other than a dtype, a shape, an order and bytes")


_BYTES_LIKE = (bytes, bytearray, memoryview, pickle.PickleBuffer)


def _check_pandas(m: Budget, args: tuple[Any, ...]) -> None:
    if (len(args) != 2 or type(args[0]) is not dict or type(args[1]) is not tuple
            or not all(isinstance(b, _BYTES_LIKE) for b in args[1])):
        refuse("a pandas value of something other than a description and bytes")
    # what it makes from its bytes: columns are views of them or decoded from them once
    m.charge(sum(memoryview(b).nbytes for b in args[1]), "a pandas value")


def _check_random(m: Budget, args: tuple[Any, ...]) -> None:
    if (len(args) != 4 or type(args[0]) is not str or type(args[1]) is not str
            or type(args[2]) is not dict or not (args[3] is None or type(args[3]) is tuple)):
        refuse("a random generator of something other than names, a state and a seed")
    # the seed's sequences are small as numpy writes them: never a range numpy would expand
    seed = args[3] or ()
    if any(type(f) is not int and not (hasattr(f, "__len__") and type(f) is not range
                                       and len(f) <= 1 << 16) for f in seed[:2]):
        refuse("a random generator whose seed is not a few numbers")


def _check_arrow(m: Budget, args: tuple[Any, ...]) -> None:
    if len(args) != 2 or type(args[0]) is not str or not isinstance(args[1], _BYTES_LIKE):
        refuse("an Arrow value of something other than a kind and bytes")
    m.charge(memoryview(args[1]).nbytes, "an Arrow value")  # views of it, and offsets


_BY_NAME: dict[tuple[str, str], Check] = {
    ("builtins", "bool"): _check_bool,
    ("builtins", "bytearray"): _check_bytes,
    ("builtins", "bytes"): _check_bytes,
    ("builtins", "complex"): _check_complex,
    ("builtins", "dict"): _check_dict,
    ("builtins", "float"): _check_float,
    ("builtins", "frozenset"): _check_set,
    ("builtins", "int"): _check_int,
    ("builtins", "list"): _sequence(_SEQ_ITEM, "list"),
    ("builtins", "range"): _check_range,
    ("builtins", "set"): _check_set,
    ("builtins", "slice"): _check_slice,
    ("builtins", "str"): _check_str,
    ("builtins", "tuple"): _sequence(_SEQ_ITEM, "tuple"),
    ("collections", "OrderedDict"): _check_dict,
    ("decimal", "Decimal"): _check_decimal,
    ("hibernate._placeholder", "Placeholder"): _check_placeholder,
    ("hibernate.serializers._numpy", "portable_array"): _check_array,
    ("hibernate.serializers._numpy", "portable_random"): _check_random,
    ("hibernate.serializers._pandas", "portable_pandas"): _check_pandas,
    ("hibernate.serializers._arrow", "portable_arrow"): _check_arrow,
    **{("datetime", n): _check_when for n in ("date", "datetime", "time", "timedelta",
                                                "timezone")},
}
assert set(_BY_NAME) == ALLOWED


_CHECKS: dict[object, Check] = {}


def check_for(cls: type) -> Check | None:
    """An allowed type's argument check (resolved on first use: the placeholder module is
    imported only by a load that names it); None for any other type."""
    check = _CHECKS.get(cls)
    if check is None:
        where = (getattr(cls, "__module__", None), getattr(cls, "__qualname__", None))
        check = _BY_NAME.get(where)  # type: ignore[arg-type]
        if check is None or getattr(importlib.import_module(where[0]),  # type: ignore[arg-type]
                                    where[1]) is not cls:  # type: ignore[arg-type]
            return None
        _CHECKS[cls] = check
    return check
