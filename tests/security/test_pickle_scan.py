"""The `hibernate trust` listing cannot be fooled (trust issue: the opcode scan).

The listing (``referenced_globals``, behind ``hibernate trust FILE``) must name every global
a load would look up. Found: the old scan ignored POP/POP_MARK (a pickle showed
``collections.OrderedDict`` and called ``os.system``), and a valid pickle followed by one
junk byte made it show only "unreadable" while ``pickle.loads`` ran the payload.

Each hostile pickle here is built by hand from opcodes and checked the way an attacker
would: a recording unpickler (its find_class returns a harmless stub, so nothing runs) says
what a real load looks up, and the listing must name it, or ``?``. A real file carrying a
payload plus one junk byte is made by a stranger, and loading it with ``trust=True`` must
fail the entry instead of creating a canary file (the same file without the junk byte
does create it: the payload is live).
"""

from __future__ import annotations

import _compat_pickle
import io
import pickle
import random
import struct
import sys
import types
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from hibernate.trust._opcodes import UNKNOWN, MalformedPickle, referenced_globals

# -- building pickles by hand ------------------------------------------------------------------


def u(text: str) -> bytes:
    """SHORT_BINUNICODE: push a string."""
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


P4 = b"\x80\x04"
STACK_GLOBAL, TUPLE1, REDUCE, STOP = b"\x93", b"\x85", b"R", b"."
POP, POP_MARK, MARK, DUP, MEMOIZE = b"0", b"1", b"(", b"2", b"\x94"


def binput(i: int) -> bytes:
    return b"q" + bytes([i])


def binget(i: int) -> bytes:
    return b"h" + bytes([i])


def call(callee: bytes, arg: str = "touch CANARY") -> bytes:
    """``callee`` pushes a callable: call it with one string."""
    return callee + u(arg) + TUPLE1 + REDUCE


class _Stub:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> _Stub:
        return _Stub()


class _Recorder(pickle.Unpickler):
    """What a real load looks up, in order; every global is a harmless stub."""

    def __init__(self, stream: bytes) -> None:
        self.file = io.BytesIO(stream)
        super().__init__(self.file)
        self.lookups: list[tuple[str, str]] = []

    def find_class(self, module: str, name: str) -> Any:
        self.lookups.append((module, name))
        return _Stub


def real_lookups(stream: bytes) -> list[tuple[str, str]]:
    r = _Recorder(stream)
    try:
        r.load()
    except Exception:
        pass
    return r.lookups


def covered(listed: Counter[tuple[str, str]], lookups: list[tuple[str, str]]) -> bool:
    """Every lookup is named by the listing, or counted among its unknowns."""
    unknown = listed.get(UNKNOWN, 0)
    for pair, n in Counter(lookups).items():
        unknown -= max(0, n - listed.get(pair, 0))
    return unknown >= 0


HIDDEN = {
    # the old scan's "last two strings" were OrderedDict: POP does not push
    "POP": P4 + u("os") + u("system") + u("collections") + u("OrderedDict") + POP + POP
    + STACK_GLOBAL + u("x") + TUPLE1 + REDUCE + STOP,
    "POP_MARK": P4 + u("os") + u("system") + MARK + u("collections") + u("OrderedDict")
    + POP_MARK + STACK_GLOBAL + u("x") + TUPLE1 + REDUCE + STOP,
    "POP on a mark pops the mark": P4 + u("os") + u("system") + MARK + POP + STACK_GLOBAL
    + u("x") + TUPLE1 + REDUCE + STOP,
    "memo, stored then fetched": P4 + u("os") + MEMOIZE + POP + u("system") + binput(7) + POP
    + u("collections") + u("OrderedDict") + POP + POP + binget(0) + binget(7) + STACK_GLOBAL
    + u("x") + TUPLE1 + REDUCE + STOP,
    "memo slot overwritten": P4 + u("collections") + binput(1) + POP + u("os") + binput(1)
    + POP + binget(1) + u("system") + STACK_GLOBAL + u("x") + TUPLE1 + REDUCE + STOP,
    # MEMOIZE stores at "how many slots are filled" (1 here): it overwrites slot 1
    "MEMOIZE after a sparse PUT": P4 + u("collections") + binput(1) + POP + u("os") + MEMOIZE
    + POP + binget(1) + u("system") + STACK_GLOBAL + u("x") + TUPLE1 + REDUCE + STOP,
    "DUP": P4 + u("os") + u("system") + DUP + POP + STACK_GLOBAL + u("x") + TUPLE1 + REDUCE
    + STOP,
    "text memo (PUT/GET lines)": b"(" + u("os") + b"p00\n0" + u("system") + b"p5\x00junk\n0"
    + b"g0\ng5\n" + STACK_GLOBAL + u("x") + TUPLE1 + REDUCE + STOP,
    "STRING and UNICODE operands": b"S'os'\nVsystem\n" + STACK_GLOBAL + u("x") + TUPLE1
    + REDUCE + STOP,
    "INST": b"(" + u("x") + b"ios\nsystem\n" + STOP,
    "OBJ": b"(cos\nsystem\n" + u("x") + b"o" + STOP,
    "GLOBAL": call(b"cos\nsystem\n") + STOP,
    "NEWOBJ_EX around a call": P4 + u("builtins") + u("object") + STACK_GLOBAL + b")}\x92"
    + POP + call(u("os") + u("system") + STACK_GLOBAL) + STOP,
}


@pytest.mark.parametrize("label", sorted(HIDDEN))
def test_the_listing_names_a_hidden_os_system(label: str) -> None:
    stream = HIDDEN[label]
    assert ("os", "system") in real_lookups(stream), "the payload is not live"
    listed = referenced_globals(stream)
    assert listed[("os", "system")] >= 1, listed
    assert ("collections", "OrderedDict") not in listed  # the decoy is not named


def test_a_name_made_at_load_time_is_unknown_never_guessed() -> None:
    # str("os") is only known when it runs: the module is reported as "?"
    stream = (P4 + call(u("builtins") + u("str") + STACK_GLOBAL, "os") + u("system") + STACK_GLOBAL
              + u("x") + TUPLE1 + REDUCE + STOP)
    assert pickle.loads(P4 + call(u("builtins") + u("str") + STACK_GLOBAL, "os") + STOP) == "os"
    listed = referenced_globals(stream)
    assert listed == Counter({("builtins", "str"): 1, UNKNOWN: 1})
    # a global's value (os.sep is a string) used as a name: unknown too
    stream = P4 + u("os") + u("sep") + STACK_GLOBAL + u("system") + STACK_GLOBAL + STOP
    assert referenced_globals(stream) == Counter({("os", "sep"): 1, UNKNOWN: 1})


def test_extension_codes_and_persistent_ids_are_unknown() -> None:
    assert referenced_globals(b"\x82\x05" + u("x") + TUPLE1 + REDUCE + STOP) == Counter(
        {UNKNOWN: 1})
    assert referenced_globals(b"Pid\n" + STOP)[UNKNOWN] == 1
    assert referenced_globals(b"N" + b"Q" + STOP)[UNKNOWN] == 1


def test_python2_names_are_listed_as_the_unpickler_imports_them() -> None:
    # below protocol 3, pickle maps Python 2 modules: "commands" is subprocess
    stream = b"\x80\x02ccommands\ngetoutput\n" + u("id") + TUPLE1 + REDUCE + STOP
    assert referenced_globals(stream) == Counter({("subprocess", "getoutput"): 1})
    assert referenced_globals(b"\x80\x03ccommands\ngetoutput\n" + STOP) == Counter(
        {("commands", "getoutput"): 1})


PAYLOAD = P4 + call(u("os") + u("system") + STACK_GLOBAL) + STOP


@pytest.mark.parametrize("junk", [b"\x00", b".", b"N.", PAYLOAD])
def test_bytes_after_stop_are_refused_by_the_listing(junk: bytes) -> None:
    assert real_lookups(PAYLOAD + junk) == [("os", "system")]  # loads stop at the STOP
    with pytest.raises(ValueError, match="after its STOP") as e:
        referenced_globals(PAYLOAD + junk)
    assert "os.system" in str(e.value)  # what the valid part would run is still named
    assert isinstance(e.value, MalformedPickle) and e.value.found[("os", "system")] == 1


def test_junk_inside_the_last_frame_is_refused() -> None:
    body = call(u("os") + u("system") + STACK_GLOBAL) + STOP + b"\x00"
    stream = P4 + b"\x95" + struct.pack("<Q", len(body)) + body
    with pytest.raises(ValueError, match="after its STOP"):
        referenced_globals(stream)
    # checking the position after Unpickler.load() would not see it: the frame is read
    r = _Recorder(stream)
    r.load()
    assert r.lookups == [("os", "system")] and r.file.tell() == len(stream)


@pytest.mark.parametrize("stream", [
    PAYLOAD[:-1],  # no STOP
    PAYLOAD[:-1] + b"\xff",  # an unknown opcode after the call
    P4 + call(u("os") + u("system") + STACK_GLOBAL) + b"\x8c\x40abc",  # a truncated argument
    P4 + call(u("os") + u("system") + STACK_GLOBAL) + POP + POP + STOP,  # stack underflow
    P4 + call(u("os") + u("system") + STACK_GLOBAL) + binget(9) + STOP,  # a memo miss
])
def test_a_malformed_stream_raises_and_still_names_what_runs_first(stream: bytes) -> None:
    with pytest.raises(ValueError) as e:
        referenced_globals(stream)
    assert e.value.found[("os", "system")] == 1  # type: ignore[attr-defined]
    assert "os.system" in str(e.value)
    # a load fails too, but only after the call (looked up here with a stub, run nothing)
    recorder = _Recorder(stream)
    with pytest.raises(Exception):  # noqa: B017
        recorder.load()
    assert recorder.lookups == [("os", "system")]


# -- differential: the listing against the C unpickler, on random streams ---------------------

_MODULES = ("hibscan0", "hibscan1", "hibscan2")
_NAMES = ("n0", "n1", "OrderedDict")
_LOOKUPS: list[tuple[str, str]] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "pickle.find_class" and args[0] in _MODULES:
        _LOOKUPS.append((args[0], args[1]))


def _random_stream(rng: random.Random) -> bytes:
    parts: list[bytes] = []
    texts = _MODULES + _NAMES
    for _ in range(rng.randint(1, 30)):
        r = rng.random()
        if r < 0.25:
            parts.append(u(rng.choice(texts)))
        elif r < 0.30:
            parts.append(b"c" + rng.choice(_MODULES).encode() + b"\n"
                         + rng.choice(_NAMES).encode() + b"\n")
        elif r < 0.33:
            parts.append(b"i" + rng.choice(_MODULES).encode() + b"\n"
                         + rng.choice(_NAMES).encode() + b"\n")
        elif r < 0.36:
            parts.append(rng.choice([b"S'%s'\n", b"V%s\n"]) % rng.choice(texts).encode())
        elif r < 0.45:
            parts.append(rng.choice([b"q", b"h"]) + bytes([rng.randint(0, 3)]))
        elif r < 0.48:
            parts.append(rng.choice([b"p", b"g"]) + str(rng.randint(0, 3)).encode()
                         + rng.choice([b"", b"\x00z", b" "]) + b"\n")
        elif r < 0.50:
            parts.append(b"\x80" + bytes([rng.choice([2, 3, 4, 5])]))
        elif r < 0.51:
            parts.append(b"\x95" + struct.pack("<Q", rng.randint(0, 40)))
        else:
            parts.append(bytes([rng.choice(b"()0121N]}\x8f\x90\x91\x93\x94\x85\x86\x87tlaeusdR"
                                           b"b\x81\x92o\x97\x98QK.")]))
    stream = b"".join(parts) + (b"." if rng.random() < 0.8 else b"")
    return stream + (rng.choice([b"X", b".", b"N."]) if rng.random() < 0.1 else b"")


def _reads_to_its_end(stream: bytes) -> tuple[bool, list[tuple[str, str]]]:
    """Whether the C unpickler (in memory, as hibernate calls it) reads the stream to its
    last byte, that byte being its STOP; and what it looked up."""
    _LOOKUPS.clear()
    try:
        pickle.loads(stream, buffers=[b"b"] * 4)
    except Exception:
        return False, list(_LOOKUPS)
    lookups = list(_LOOKUPS)
    return _truncated_fails(stream), lookups


def _truncated_fails(stream: bytes) -> bool:
    try:
        pickle.loads(stream[:-1], buffers=[b"b"] * 4)
    except Exception:
        return True
    return False


def test_the_listing_covers_every_lookup_of_the_c_unpickler_on_random_streams(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for m in _MODULES:
        mod = types.ModuleType(m)
        for n in _NAMES:
            setattr(mod, n, _Stub)
        monkeypatch.setitem(sys.modules, m, mod)
    sys.addaudithook(_audit)
    rng = random.Random(20240613)
    checked = Counter[str]()
    for _ in range(6000):
        stream = _random_stream(rng)
        complete, lookups = _reads_to_its_end(stream)
        try:
            listed, refused = referenced_globals(stream), False
        except MalformedPickle as e:
            listed, refused = e.found, True
        assert not (complete and refused), stream
        assert covered(listed, lookups), (stream, lookups, listed)
        checked["read to the end"] += complete
        checked["looked something up"] += bool(lookups)
    # the generator makes enough of both to mean something
    assert checked["read to the end"] > 150 and checked["looked something up"] > 300, checked


def test_real_pickles_are_listed_exactly() -> None:
    import collections
    import datetime
    import decimal

    values = [1, "s", b"b", bytearray(b"x"), [1, (2, 3)], {"k": {1, 2}}, frozenset({3}),
              collections.OrderedDict(a=1), datetime.datetime(2024, 1, 2),
              decimal.Decimal("1.5"), range(3), slice(1, 2), complex(1, 2), 10**40,
              collections.Counter("abc"), ValueError("x"), int, Path("p")]
    for proto in range(pickle.HIGHEST_PROTOCOL + 1):
        for v in values:
            stream = pickle.dumps(v, protocol=proto)
            lookups = real_lookups(stream)
            if proto < 3:  # the unpickler maps Python 2 names after find_class is called
                lookups = [_compat_pickle.NAME_MAPPING.get(
                    (m, n), (_compat_pickle.IMPORT_MAPPING.get(m, m), n)) for m, n in lookups]
            assert referenced_globals(stream) == Counter(lookups), (proto, v)


# -- a real file: a payload and one junk byte ---------------------------------------------------

# The stranger's pickler writes a hand-made stream for the one pickled value.
STRANGER = """
import hibernate
from hibernate.serializers._pickle import PickleSerializer
STREAM = {stream!r}
def dump_to(self, obj, stream, add_buffer):
    stream.write(STREAM)
    return {{"buffers": 0}}, []
PickleSerializer.dump_to = dump_to
hibernate.save({path!r}, {{"x": [1, 2, 3]}})
"""


def _file(fresh: Any, name: str, stream: bytes) -> Path:
    fresh.run(STRANGER.format(stream=stream, path=name),
              env={"HIBERNATE_KEY": "someone-else-entirely-0123456789"})
    return Path(fresh.path / name)


TOUCH = P4 + call(u("os") + u("system") + STACK_GLOBAL, "touch CANARY") + STOP


def test_a_file_with_bytes_after_its_pickle_fails_to_load_and_runs_nothing(fresh: Any) -> None:
    _file(fresh, "control.hib", TOUCH)
    _file(fresh, "evil.hib", TOUCH + b"\x00")
    got = fresh.json("""
        import json, os
        import hibernate
        from hibernate._api import file_globals
        _, listed = file_globals("evil.hib")
        r = hibernate.load("evil.hib", {}, trust=True)
        r2 = hibernate.load("evil.hib", {}, data_only=True)
        after_evil = os.path.exists("CANARY")
        _, control_listed = file_globals("control.hib")
        hibernate.load("control.hib", {}, trust=True)
        print(json.dumps({"listed": [list(k) for k in listed],
                          "control_listed": [list(k) for k in control_listed],
                          "failed": r.failed, "restored": list(r.restored),
                          "data_only": {**r2.failed, **{n: str(s) for n, s in r2.skipped.items()}},
                          "canary_after_evil": after_evil,
                          "canary_after_control": os.path.exists("CANARY")}))
    """)
    # the listing refuses the stream, and still names what its valid part calls
    refusal = [m + "." + n for m, n in got["listed"] if m == "?"]
    assert refusal and "after its STOP" in refusal[0] and "os.system" in refusal[0]
    # a trusted load fails the entry instead of running the payload
    assert got["restored"] == [] and "after the pickle's STOP" in got["failed"]["x"]
    assert "x" in got["data_only"]
    assert got["canary_after_evil"] is False
    # without the junk byte, the same payload is listed, and runs when trusted
    assert ["os", "system"] in got["control_listed"]
    assert got["canary_after_control"] is True


# -- the loader's own check, paid only when a global is named (speed issue, item 3) -------


def _frame(body: bytes) -> bytes:
    return b"\x95" + struct.pack("<Q", len(body)) + body


def _load(stream: bytes) -> Any:
    from hibernate.serializers._pickle import PickleSerializer

    return PickleSerializer().load({"buffers": 0}, [stream])


PLAIN = pickle.dumps([(i, str(i)) for i in range(50_000)], protocol=5)  # many frames


@pytest.mark.parametrize("name, stream", [
    ("after the end", PLAIN + b"\x00"),
    ("inside the last frame", P4 + _frame(b"K\x01" + STOP + b"N")),
    ("a STOP in an early frame", P4 + _frame(b"K\x01" + STOP) + _frame(b"K\x02" + STOP)),
    ("a STOP in the middle of a big stream", PLAIN[:-1] + STOP + b"N" + STOP),
])
def test_plain_data_with_bytes_after_its_stop_is_refused(name: str, stream: bytes) -> None:
    """No global, so nothing could run: the check comes after reading, and still refuses."""
    pickle.loads(stream)  # pickle itself loads each (it stops at the first STOP)
    with pytest.raises(pickle.UnpicklingError, match="after the pickle's STOP"):
        _load(stream)


def test_a_global_late_in_a_stream_with_junk_runs_nothing(tmp_path: Path) -> None:
    canary = tmp_path / "CANARY"
    late = call(u("os") + u("system") + STACK_GLOBAL, f"touch {canary}")
    stream = PLAIN[:-2] + late + b"a" + STOP + b"\x00"  # ...APPEND the call's result, junk
    with pytest.raises(pickle.UnpicklingError, match="after the pickle's STOP"):
        _load(stream)
    assert not canary.exists()  # refused at the global, before it was handed out


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_every_protocol_loads_exactly(protocol: int) -> None:
    value = {"a": [1, 2.5, "x" * 100, b"y" * 70_000, None, (3, 4)], "when": types.SimpleNamespace}
    assert _load(pickle.dumps(value, protocol=protocol)) == value
    with pytest.raises(pickle.UnpicklingError, match="after the pickle's STOP"):
        _load(pickle.dumps(value, protocol=protocol) + b"\n")
