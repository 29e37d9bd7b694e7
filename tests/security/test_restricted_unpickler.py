"""The restricted unpickler's allowed types cannot be turned against the loader (trust
issue: data_only loads of untrusted files).

Found: only plain data types may be named, but they can be called with hostile arguments:
a 665-byte file allocated 1 GiB (``bytearray(1 << 30)`` through REDUCE), another built a
30-million-element list, a set of colliding integers builds quadratically. Also found
here: a 1 MB pickle whose dict key is a tuple nested a million deep kills the process
(SIGSEGV: hashing recurses in C), with no global at all.

Each hostile stream is loaded in a child process under an address-space limit (what it
could map beyond the warmed-up interpreter is ``LIMIT``); the child must exit normally
(no signal), report a refusal (not a ``MemoryError``: the budget refuses before
allocating), and its peak resident memory must grow by less than ``LIMIT``. A control
runs the same stream through the old unpickler (the C one with the same allow list) to
show the payload is live. Collisions are asserted by counts: ``MAX_SAME_HASH`` colliding
keys load, one more is refused.
"""

from __future__ import annotations

import collections
import datetime
import decimal
import json
import pickle
import struct
from pathlib import Path
from typing import Any

import pytest

from hibernate._placeholder import Placeholder
from hibernate.trust._restricted import (
    MAX_KEY_DEPTH,
    MAX_SAME_HASH,
    RefusedData,
    RefusedGlobal,
    restricted_loads,
)
from memory import child

LIMIT = 64 << 20
P4, STOP = b"\x80\x04", b"."
MERSENNE = 2**61 - 1  # the modulus of Python's numeric hash: k*M + c all hash to c


def u(text: str) -> bytes:
    raw = text.encode()
    return (b"\x8c" + bytes([len(raw)]) + raw if len(raw) < 256
            else b"X" + struct.pack("<I", len(raw)) + raw)


def g(module: str, name: str) -> bytes:
    return u(module) + u(name) + b"\x93"


def i4(n: int) -> bytes:
    return b"J" + struct.pack("<i", n)


def long1(n: int) -> bytes:
    raw = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw


def fl(x: float) -> bytes:
    return b"G" + struct.pack(">d", x)


def call1(func: bytes, arg: bytes) -> bytes:  # func(arg) through REDUCE
    return func + arg + b"\x85R"


def colliding_set(count: int) -> bytes:
    """A set of ``count`` integers with one hash value, through EMPTY_SET/ADDITEMS."""
    return P4 + b"\x8f(" + b"".join(long1(k * MERSENNE + 7) for k in range(1, count + 1)) \
        + b"\x90" + STOP


RANGE_30M = call1(g("builtins", "range"), i4(30_000_000))

HOSTILE = {
    # the cases
    "bytearray(1 << 30) via REDUCE": P4 + call1(g("builtins", "bytearray"), i4(1 << 30)) + STOP,
    "list(range(30 million))": P4 + call1(g("builtins", "list"), RANGE_30M) + STOP,
    # the same through other doors
    "bytes.__new__(bytes, 1 << 30) via NEWOBJ": P4 + g("builtins", "bytes") + i4(1 << 30)
    + b"\x85\x81" + STOP,
    "tuple.__new__(tuple, range) via NEWOBJ": P4 + g("builtins", "tuple") + RANGE_30M
    + b"\x85\x81" + STOP,
    "frozenset(range) via OBJ": P4 + b"(" + g("builtins", "frozenset") + RANGE_30M + b"o" + STOP,
    "dict([range]) (a pair that is not a pair)": P4 + g("builtins", "dict") + b"(" + RANGE_30M
    + b"l\x85R" + STOP,
    "list[0:0] = range via SETITEM": P4 + b"]" + g("builtins", "slice") + b"K\x00K\x00\x86R"
    + RANGE_30M + b"s" + STOP,
    "str of a list sharing one 100 KB string 1000 times": P4 + g("builtins", "str") + b"]("
    + u("x" * 100_000) + b"\x94" + b"h\x00" * 1000 + b"e\x85R" + STOP,
    "BYTEARRAY8 declaring 1 TiB": P4 + b"\x96" + struct.pack("<Q", 1 << 40) + STOP,
    "LONG_BINPUT at index 2**31 - 1 (the C memo is an array)": P4 + b"Nr\xff\xff\xff\x7f" + STOP,
    "int of 100000 digits": P4 + call1(g("builtins", "int"), u("9" * 100_000)) + STOP,
    "str(bytes, 'zlib_codec') (a decompression bomb codec)": P4 + g("builtins", "str")
    + b"C\x02xx" + u("zlib_codec") + b"\x86R" + STOP,
    "200000 empty sets (opcode amplification)": P4 + b"](" + b"\x8f" * 200_000 + b"e" + STOP,
    # hashing
    "a set of 1000 colliding integers": colliding_set(1000),
    "a set of colliding complex numbers (small values)": P4 + b"\x8f(" + b"".join(
        g("builtins", "complex") + fl(1000003.0 * k) + fl(-float(k)) + b"\x86R"
        for k in range(1, 500)) + b"\x90" + STOP,
    "a dict key that is a tuple DAG (2**64 to hash)": P4 + b"}" + b"K\x00\x85" + b"2\x86" * 64
    + b"Ns" + STOP,
    "a dict key nested 300000 tuples deep": P4 + b"}K\x01" + b"\x85" * 300_000 + b"K\x02s"
    + STOP,
    # code, whatever the process registered
    "EXT1 (copyreg extension code)": P4 + b"\x82\xf0" + u("touch EXT_CANARY") + b"\x85R"
    + STOP,
    "bytes after STOP": P4 + call1(g("builtins", "list"), b")") + STOP + b"\x00",
    # an allowed constructor of hibernate's own, fed a range where numpy expects a few ints
    "a numpy seed whose spawn key is range(30 million)": P4
    + g("hibernate.serializers._numpy", "portable_random") + b"(" + u("bit_generator")
    + u("PCG64") + b"}(" + u("bit_generator") + u("PCG64") + b"u"
    + b"(" + i4(1) + RANGE_30M + i4(4) + i4(0) + b"t" + b"tR" + STOP,
}

CHILD = """
import json, os, pickle, resource, sys
import hibernate.serializers._numpy  # what a data_only load has imported before it reads
from hibernate.trust._restricted import ALLOWED, restricted_loads
import copyreg
copyreg.add_extension("os", "system", 240)  # what the process registered and once loaded
pickle.loads(bytes([0x80, 2, 0x82, 0xF0]) + b".")  # (trusted: the unpickler caches it)

class Old(pickle.Unpickler):  # the unpickler data_only used before: C, same allow list
    def find_class(self, module, name):
        if (module, name) not in ALLOWED:
            raise pickle.UnpicklingError(f"needs code: {module}.{name}")
        return super().find_class(module, name)

def old(stream):
    import io
    return Old(io.BytesIO(stream)).load()

load = {"new": restricted_loads, "old": old}[MODE]
load(pickle.dumps([1, "a", {2: (3,)}, {4}, b"x", 2.5], protocol=5))  # warm up
stream = open("payload.bin", "rb").read()
with open("/proc/self/status") as f:
    vm = int(f.read().split("VmSize:")[1].split()[0]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (vm + LIMIT, resource.RLIM_INFINITY))
start = reset_peak()
try:
    load(stream)
    outcome = "loaded"
except MemoryError:
    outcome = "MemoryError"
except Exception as e:
    outcome = f"{type(e).__name__}: {str(e)[:200]}"
grown = peak_growth(start)
print(json.dumps({"outcome": outcome, "grown": grown, "ran": os.path.exists("EXT_CANARY"),
                  "codec": "encodings.zlib_codec" in sys.modules}))
"""


def _in_child(fresh: Any, stream: bytes, mode: str = "new") -> tuple[int, dict[str, Any]]:
    (fresh.path / "payload.bin").write_bytes(stream)
    proc = fresh.run(child(f"MODE = {mode!r}\nLIMIT = {LIMIT}\n" + CHILD), check=False,
                     timeout=120)
    lines = proc.stdout.strip().splitlines()
    return proc.returncode, (json.loads(lines[-1]) if lines else {"stderr": proc.stderr[-2000:]})


@pytest.mark.parametrize("label", list(HOSTILE))
def test_a_hostile_stream_is_refused_within_the_memory_bound(fresh: Any, label: str) -> None:
    code, got = _in_child(fresh, HOSTILE[label])
    assert code == 0, f"the child died (signal {-code})" if code < 0 else got
    outcome = got["outcome"]
    assert outcome.startswith(("RefusedData", "RefusedGlobal", "MalformedPickle")), outcome
    assert got["grown"] < LIMIT, f"peak memory grew by {got['grown'] >> 20} MiB"
    assert got["codec"] is False  # no codec module was imported to decode anything
    assert got["ran"] is False


@pytest.mark.parametrize("label", [
    "bytearray(1 << 30) via REDUCE", "list(range(30 million))",
    "str of a list sharing one 100 KB string 1000 times",
    "a dict key nested 300000 tuples deep", "EXT1 (copyreg extension code)"])
def test_control_the_old_unpickler_falls_for_it(fresh: Any, label: str) -> None:
    """The payloads are live: the C unpickler with the same allow list tries to allocate
    beyond the limit, dies by a signal, or runs code through the extension registry."""
    code, got = _in_child(fresh, HOSTILE[label], mode="old")
    if "deep" in label:
        assert code < 0  # killed by a signal: hashing the key overflows the C stack
    elif "EXT" in label:
        assert got["ran"] is True  # the cached os.system, never seen by find_class
    else:
        assert got["outcome"] == "MemoryError" or got["grown"] >= LIMIT // 2, got


def test_colliding_keys_are_refused_by_count_not_by_time() -> None:
    assert len(restricted_loads(colliding_set(MAX_SAME_HASH))) == MAX_SAME_HASH
    with pytest.raises(RefusedData, match="share one hash value"):
        restricted_loads(colliding_set(MAX_SAME_HASH + 1))
    # counted per container across opcodes: two batches into one set
    half = MAX_SAME_HASH // 2 + 1
    batch = b"(" + b"".join(long1(k * MERSENNE + 7) for k in range(1, half + 1)) + b"\x90"
    batch2 = b"(" + b"".join(long1(k * MERSENNE + 7) for k in range(half + 1, 2 * half + 1)) \
        + b"\x90"
    with pytest.raises(RefusedData, match="share one hash value"):
        restricted_loads(P4 + b"\x8f" + batch + batch2 + STOP)
    # and through every door into a hashed container
    keys = [long1(k * MERSENNE + 7) for k in range(1, MAX_SAME_HASH + 2)]
    pairs = b"".join(k + b"N" for k in keys)
    for stream in (P4 + b"(" + pairs + b"d" + STOP,  # DICT
                   P4 + b"}(" + pairs + b"u" + STOP,  # SETITEMS
                   P4 + b"(" + b"".join(keys) + b"\x91" + STOP,  # FROZENSET
                   P4 + call1(g("builtins", "set"), b"(" + b"".join(keys) + b"l") + STOP,
                   P4 + call1(g("builtins", "dict"), b"(" + pairs + b"d") + STOP):
        with pytest.raises(RefusedData, match="share one hash value"):
            restricted_loads(stream)


def test_keys_nest_at_most_max_key_depth_tuples() -> None:
    def keyed(depth: int) -> bytes:
        return P4 + b"}K\x01" + b"\x85" * depth + b"K\x02s" + STOP

    assert len(restricted_loads(keyed(MAX_KEY_DEPTH - 1))) == 1
    with pytest.raises(RefusedData, match="deep"):
        restricted_loads(keyed(MAX_KEY_DEPTH + 1))


def test_plain_data_loads_exactly() -> None:
    inner = [1, 2]
    values: list[Any] = [
        1, -1, 2**70, -(2**70), 1.5, "s", "é\ud800", b"b", bytearray(b"ba"), [1, 2],
        {"a": 1, 2: (3,)}, {1, 2, (1, 2)}, frozenset({3, "x"}), (1, "x"),
        collections.OrderedDict(a=1, b=[2]),
        datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
        datetime.date(2020, 1, 1), datetime.time(1, 2), datetime.timedelta(days=3, seconds=5),
        datetime.timezone(datetime.timedelta(hours=2), "X"), decimal.Decimal("1.5"),
        range(1, 10, 2), slice(1, None, 2), complex(1, -2), None, True, {"k": {1.5: [b"x"]}},
        set(), frozenset(), (), "", b"", {10**30: 1, 2.5: 2, complex(1, 1): 3, (1, (2, 3)): 4},
        list(range(10_000)), {i: str(i) for i in range(5_000)},
        {2**64 + i for i in range(5_000)},  # many large integers, no two colliding
        bytes(100_000), "x" * 100_000]
    for proto in (3, 4, 5):
        for v in values:
            stream = pickle.dumps(v, protocol=proto)
            got = restricted_loads(stream)
            assert type(got) is type(v) and got == v, (proto, v)
            if not isinstance(v, (set, frozenset)):  # a set's order follows str hashes
                assert repr(got) == repr(v), (proto, v)  # order and exact types inside
    got = restricted_loads(pickle.dumps([inner, inner], protocol=5))
    assert got[0] is got[1]  # identity survives
    got = restricted_loads(pickle.dumps(Placeholder("Lock", "cannot pickle"), protocol=5))
    assert repr(got) == repr(Placeholder("Lock", "cannot pickle"))


def test_what_is_not_data_is_still_refused_as_needing_code() -> None:
    for stream in (P4 + call1(g("os", "system"), u("true")) + STOP,
                   b"cbuiltins\neval\n" + u("1") + b"\x85R" + STOP,
                   P4 + b"\x82\x01" + STOP,
                   b"Pid\n" + STOP):
        with pytest.raises(RefusedGlobal):
            restricted_loads(stream)


# -- the 665-byte file of the issue, through a real data_only load ------------------------------

STRANGER = """
import hibernate
from hibernate.serializers._pickle import PickleSerializer
def dump_to(self, obj, stream, add_buffer):
    stream.write({stream!r})
    return {{"buffers": 0}}, []
PickleSerializer.dump_to = dump_to
hibernate.save("bomb.hib", {{"x": [1, 2, 3]}})
"""


def test_a_file_whose_pickle_allocates_1_gib_fails_its_entry_in_bounded_memory(
        fresh: Any) -> None:
    fresh.run(STRANGER.format(stream=HOSTILE["bytearray(1 << 30) via REDUCE"]),
              env={"HIBERNATE_KEY": "someone-else-entirely-0123456789"})
    assert Path(fresh.path / "bomb.hib").stat().st_size < 4096
    proc = fresh.run(child(f"LIMIT = {LIMIT}\n" + """
import json, resource
import hibernate
hibernate.save("warm.hib", {"w": [1]})
hibernate.load("warm.hib", {}, data_only=True)
with open("/proc/self/status") as f:
    vm = int(f.read().split("VmSize:")[1].split()[0]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (vm + LIMIT, resource.RLIM_INFINITY))
start = reset_peak()
r = hibernate.load("bomb.hib", {}, data_only=True)
print(json.dumps({"failed": r.failed, "restored": sorted(r.restored),
                  "grown": peak_growth(start)}))
"""), check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "allocation budget" in got["failed"]["x"] and got["grown"] < LIMIT
