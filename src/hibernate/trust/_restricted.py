"""An unpickler that runs no code from the file, within an allocation budget.

Only an explicit list of data types (containers and scalars) may be named (``ALLOWED``);
every other global, persistent ids and copyreg extension codes are refused with
``RefusedGlobal`` naming what was asked for. Never allowed: callables such as ``eval``,
``exec``, ``getattr``, ``__import__``, ``os.system``, or any reconstructor (``copyreg``,
cloudpickle's, hibernate's own).

The allowed types can still be called with hostile arguments (``bytearray(1 << 30)``,
``list(range(10**9))``, ``str`` of a shared structure, a set of colliding numbers), so the
stream is run by hibernate's own pickle machine (``_machine.PickleMachine``, the C
unpickler's semantics with real values) instead of ``pickle``'s, and every step is bounded
before it allocates (``RefusedData``, a ``pickle.UnpicklingError``, on excess):

- **One budget** of ``BUDGET_FACTOR`` times the stream's length plus ``BUDGET_FLOOR``
  bytes (plus the out-of-band buffers' size, so each may be copied once) is drawn from
  by every object the machine makes (its ``sys.getsizeof``), every container's growth,
  every memo entry and mark, and, before the call, by what a constructor would make:
  ``bytes``/``bytearray``/``str`` of a size or of an iterable, ``list``/``tuple``/
  ``set``/``frozenset``/``dict`` of an iterable (a ``range`` counts its length). Each
  constructor takes only the argument forms the pickler writes (checked per type):
  ``str`` never of a non-string (that is ``repr``), codecs only utf-8, ascii, latin-1,
  ``int`` of at most ``MAX_DIGITS`` characters.
- **Hashed containers** (set, frozenset, dict and OrderedDict keys, through any opcode or
  constructor) may hold at most ``MAX_SAME_HASH`` keys with one hash value, so colliding
  keys cost a bounded number of comparisons each, never a quadratic build. A key's hash
  work (tuples are hashed through, anew each time) is drawn from a second budget and its
  tuple nesting is at most ``MAX_KEY_DEPTH`` (hashing recurses in C).
- ``APPEND(S)`` only onto lists, ``SETITEM(S)`` only into dicts, ``ADDITEMS`` only into
  sets, ``BUILD`` only an OrderedDict's attributes; memo indices at most the stream's
  length; the stream must end at its STOP.

Non-goals: bounding what user code later does with the data (a value built of shared
references is small in memory however large it looks to ``repr``).
"""

from __future__ import annotations

import importlib
import pickle
import sys
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NoReturn

from ._constructors import (
    ALLOWED,
    MAX_DIGITS,
    RefusedData,
    RefusedGlobal,
    check_for,
    kind,
    refuse,
)
from ._machine import MalformedPickle, PickleMachine

__all__ = ["ALLOWED", "BUDGET_FACTOR", "BUDGET_FLOOR", "MAX_DIGITS", "MAX_KEY_DEPTH",
           "MAX_SAME_HASH", "RefusedData", "RefusedGlobal", "restricted_loads"]

BUDGET_FACTOR = 64  # bytes of objects per byte of input
BUDGET_FLOOR = 4 << 20
HASH_FACTOR = 16  # hash steps per byte of input
HASH_FLOOR = 1 << 20
MAX_SAME_HASH = 32
MAX_KEY_DEPTH = 100
_P = sys.hash_info.modulus
_HASH_ENTRY = 100  # a tracked key's place in a collision counter
_BUILTIN_MODULES = frozenset({"builtins", "datetime", "decimal", "collections",
                              "hibernate._placeholder"})
_SIZED = (str, bytes, bytearray, list, tuple, dict, OrderedDict, set, frozenset, range)


class _Loader(PickleMachine):
    def __init__(self, stream: bytes | bytearray | memoryview, buffers: Sequence[Any]
                 ) -> None:
        super().__init__(stream)
        # out-of-band buffers are already in memory: a load may copy each once
        self.budget = (BUDGET_FACTOR * self.end + BUDGET_FLOOR
                       + sum(memoryview(b).nbytes for b in buffers))
        self.hash_budget = HASH_FACTOR * self.end + HASH_FLOOR
        self.buffers = iter(buffers)
        # per hashed container (kept alive): how many tracked keys have each hash value
        self.hashes: dict[int, tuple[object, Counter[int]]] = {}
        # tuples' hash work and nesting, frozensets already hashed once (kept alive)
        self.costs: dict[int, tuple[object, int, int]] = {}

    # -- the budget ------------------------------------------------------------------------

    def charge(self, nbytes: int, what: object) -> None:
        self.budget -= nbytes
        if self.budget < 0:
            self.over(what)

    def over(self, what: object) -> NoReturn:
        what = what if isinstance(what, str) else f"a {kind(what)}"
        refuse(f"{what} would exceed the allocation budget of a data-only load "
                f"({BUDGET_FACTOR}x the stream's size)")

    def made(self, obj: Any) -> Any:
        self.budget -= sys.getsizeof(obj) + 8
        if self.budget < 0:
            self.over(obj)
        return obj

    def grown(self, obj: Any, before: int) -> None:
        self.charge(sys.getsizeof(obj) - before, obj)

    def length(self, x: object, what: str) -> int:
        """How many items iterating ``x`` yields (only types whose length is known)."""
        if isinstance(x, (memoryview, pickle.PickleBuffer)):
            return memoryview(x).nbytes
        if type(x) not in _SIZED:
            refuse(f"{what} of a {kind(x)}")
        try:
            return len(x)  # type: ignore[arg-type]
        except OverflowError:
            refuse(f"{what} of a range too long")

    # -- hashing -------------------------------------------------------------------------

    def hash_work(self, key: object) -> None:
        """Draw hashing ``key`` from the hash budget. Tuples are hashed through each time
        (Python does not cache their hash): their tree size; a frozenset once, from its
        items' stored hashes; an integer by its digits."""
        t = type(key)
        if t is tuple:
            known = self.costs.get(id(key))
            cost = known[1] if known is not None else self.tuple_cost(key)  # type: ignore[arg-type]
        elif t is frozenset:
            cost = 1
            if id(key) not in self.costs:
                self.costs[id(key)] = (key, 1, 1)
                self.charge(_HASH_ENTRY, "hash bookkeeping")
                cost += len(key)  # type: ignore[arg-type]
        elif t is int:
            cost = 1 + key.bit_length() // 60  # type: ignore[attr-defined]
        else:
            cost = 1
        self.hash_budget -= cost
        if self.hash_budget < 0:
            refuse("hashing the keys would exceed the hash budget of a data-only load "
                    f"({HASH_FACTOR} steps per byte of the stream)")

    def tuple_cost(self, root: tuple[Any, ...]) -> int:
        """A tuple's hash work (its tree size, integers by their digits) and nesting,
        computed over its shared structure once (children before parents) and kept."""
        costs = self.costs
        pending: list[tuple[tuple[Any, ...], int, bool]] = [(root, 1, False)]
        while pending:
            t, depth, ready = pending.pop()
            if id(t) in costs:
                continue
            if not ready:
                if depth > MAX_KEY_DEPTH:
                    refuse(f"a key nested more than {MAX_KEY_DEPTH} tuples deep")
                pending.append((t, depth, True))
                pending.extend((c, depth + 1, False) for c in t
                               if type(c) is tuple and id(c) not in costs)
                continue
            cost, height = 1, 1
            for c in t:
                ct = type(c)
                if ct is tuple:
                    _, c_cost, c_height = costs[id(c)]
                    cost += c_cost
                    height = max(height, c_height + 1)
                elif ct is int:
                    cost += 1 + c.bit_length() // 60
                elif ct is frozenset and id(c) not in costs:
                    cost += 1 + len(c)
                else:
                    cost += 1
            if height > MAX_KEY_DEPTH:
                refuse(f"a key nested more than {MAX_KEY_DEPTH} tuples deep")
            costs[id(t)] = (t, cost, height)
            self.charge(_HASH_ENTRY, "hash bookkeeping")
        return costs[id(root)][1]

    def keys(self, container: object | None, keys: Iterable[object]) -> Counter[int] | None:
        """Check keys about to go into ``container`` (None: a container not made yet);
        the collision counter that now holds them."""
        entry = self.hashes.get(id(container)) if container is not None else None
        counts = entry[1] if entry is not None else None
        for key in keys:
            t = type(key)
            # hashes an attacker cannot pick in bulk: randomized (str, bytes), or distinct
            # for distinct values (the integers that are their own hash)
            if t is str or t is bytes or key is None or t is bool or (
                    t is int and -_P < key < _P):  # type: ignore[operator]
                continue
            self.hash_work(key)
            h = hash(key)
            if counts is None:
                counts = Counter()
                if container is not None:
                    self.hashes[id(container)] = (container, counts)
            n = counts[h] = counts[h] + 1
            if n == 1:
                self.charge(_HASH_ENTRY, "hash bookkeeping")
            elif n > MAX_SAME_HASH:
                refuse(f"more than {MAX_SAME_HASH} keys of a set or dict share one hash "
                        "value (a hash-collision attack)")
        return counts

    def track(self, container: object, counts: Counter[int] | None) -> None:
        if counts:
            self.hashes[id(container)] = (container, counts)

    # -- globals and calls ----------------------------------------------------------------

    def find_class(self, module: Any, name: Any) -> Any:
        if type(name) is not str or type(module) is not str:
            self.fail("STACK_GLOBAL requires str")  # GLOBAL and INST read two strings
        if (module, name) not in ALLOWED:
            raise RefusedGlobal(module, name)
        sys.audit("pickle.find_class", module, name)
        return getattr(importlib.import_module(module), name)

    def instantiate(self, cls: Any, items: list[Any]) -> Any:
        args = tuple(items)
        new = not args and isinstance(cls, type) and not hasattr(cls, "__getinitargs__")
        return self.create(cls, args, None, new=new)

    def reduce(self, func: Any, args: Any) -> Any:
        if type(args) is not tuple:
            self.fail("REDUCE arguments are not a tuple")
        return self.create(func, args, None, new=False)

    def new_object(self, cls: Any, args: Any) -> Any:
        if type(args) is not tuple:
            self.fail("NEWOBJ arguments are not a tuple")
        return self.create(cls, args, None, new=True)

    def new_object_ex(self, cls: Any, args: Any, kwargs: Any) -> Any:
        if type(args) is not tuple or type(kwargs) is not dict:
            self.fail("NEWOBJ_EX arguments are not a tuple and a dict")
        return self.create(cls, args, kwargs, new=True)

    def create(self, cls: Any, args: tuple[Any, ...], kwargs: dict[str, Any] | None,
               new: bool) -> Any:
        """Call an allowed type (``cls.__new__`` for NEWOBJ) after checking its
        arguments are a form the pickler writes, and charging what it will make."""
        check = check_for(cls) if isinstance(cls, type) or callable(cls) else None
        if check is None or (new and not isinstance(cls, type)):
            refuse(f"calling a {kind(cls)}")
        if kwargs:
            refuse(f"keyword arguments to {cls.__name__}")
        counts = check(self, args)
        obj = cls.__new__(cls, *args) if new else cls(*args)
        self.track(obj, counts)
        if type(obj).__module__ not in _BUILTIN_MODULES:
            # an array, frame or generator from hibernate's portable forms: its check charged
            # its data (getsizeof of a frame would walk its strings, and count them twice)
            self.charge(256, obj)
            return obj
        return self.made(obj)

    def extension(self, code: int) -> NoReturn:
        raise RefusedGlobal("copyreg extension", str(code))

    def persistent_id(self, pid: Any) -> NoReturn:
        raise RefusedGlobal("persistent id", pid[:40] if type(pid) is str else kind(pid))

    # -- scalars -------------------------------------------------------------------------

    def decoded(self, make: Callable[[Any], Any], start: int, end: int) -> Any:
        return self.made(make(self.data[start:end]))

    def text(self, decode: Callable[[Any], str], start: int, end: int, per_char: int) -> Any:
        return self.made(decode(self.data[start:end]))

    def digits(self, text: bytes) -> bytes:
        text = text.split(b"\0", 1)[0]
        if len(text) > MAX_DIGITS:
            refuse(f"an integer of more than {MAX_DIGITS} digits")
        return text

    def int_line(self, text: bytes) -> Any:
        text = self.digits(text)
        if text in (b"00", b"01"):
            return text == b"01"
        try:
            value = int(text, 0)
        except ValueError:
            value = int(text, 10)
        return self.made(value)

    def long_line(self, text: bytes) -> Any:
        text = self.digits(text)
        return self.made(int(text[:-1] if text.endswith(b"L") else text, 0))

    def float_line(self, text: bytes) -> Any:
        return self.made(float(text.split(b"\0", 1)[0]))

    def op_BINFLOAT(self) -> None:
        self.charge(32, "a float")  # what made() charges a float, drawn before it is read
        self.stack.append(self.double())

    def next_buffer(self) -> Any:
        try:
            return next(self.buffers)
        except StopIteration:
            raise pickle.UnpicklingError("not enough out-of-band buffers") from None

    def readonly(self, value: Any) -> Any:
        view = memoryview(value)
        return value if view.readonly else view.toreadonly()

    # -- containers ----------------------------------------------------------------------

    def collection(self, cls: type, items: list[Any]) -> Any:
        if cls is dict:
            counts = self.keys(None, items[0::2])
            d = dict(zip(items[0::2], items[1::2]))
            self.track(d, counts)
            return self.made(d)
        if cls is frozenset:
            self.keys(None, items)
        return self.made(items if cls is list else cls(items))

    def extend(self, target: Any, items: list[Any]) -> None:
        if type(target) is not list:
            refuse(f"appending to a {kind(target)}")
        before = sys.getsizeof(target)
        target.extend(items)
        self.grown(target, before)

    def set_items(self, target: Any, items: list[Any]) -> None:
        if type(target) is not dict and type(target) is not OrderedDict:
            refuse(f"setting items of a {kind(target)}")
        self.keys(target, items[0::2])
        before = sys.getsizeof(target)
        for i in range(0, len(items), 2):
            target[items[i]] = items[i + 1]
        self.grown(target, before)

    def add_items(self, target: Any, items: list[Any]) -> None:
        if type(target) is not set:
            refuse(f"adding items to a {kind(target)}")
        self.keys(target, items)
        before = sys.getsizeof(target)
        target.update(items)
        self.grown(target, before)

    def build(self, inst: Any, state: Any) -> None:
        if type(state) is tuple and len(state) == 2 and state[1] is None:
            state = state[0]
        if type(inst) is not OrderedDict or not (
                state is None or (type(state) is dict and all(type(k) is str for k in state))):
            refuse(f"setting the state of a {kind(inst)}")
        if state:
            before = sys.getsizeof(inst.__dict__)
            inst.__dict__.update((sys.intern(k), v) for k, v in state.items())
            self.grown(inst.__dict__, before)

    # -- marks and memo: charged -----------------------------------------------------------

    def op_MARK(self) -> None:
        self.charge(40, "a mark")
        super().op_MARK()

    def memo_put(self, index: int) -> None:
        if index not in self.memo:
            if index > self.end:
                self.fail(f"memo index {index} beyond the stream's length")
            self.budget -= 64
            if self.budget < 0:
                self.over("a memo entry")
        PickleMachine.memo_put(self, index)  # not super(): MEMOIZE is the commonest opcode


# -- the constructors' argument forms --------------------------------------------------------

def restricted_loads(stream: bytes | bytearray | memoryview, buffers: Sequence[Any] = ()
                     ) -> object:
    """Unpickle data only (see the module docstring). Raises ``RefusedGlobal`` for a global
    that is not allowed, ``RefusedData`` beyond the budget, ``MalformedPickle`` (an
    ``UnpicklingError``) for a stream that is not exactly one pickle."""
    try:
        return _Loader(stream, buffers).run()
    except MalformedPickle:
        raise
    except RecursionError:
        refuse("nested too deeply")
