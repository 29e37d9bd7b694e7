"""Conformance suites, written once: ``StoreTests`` for every Store, ``SerializerTests`` for
every Serializer. A new store or serializer gets the whole contract by subclassing one (as
zarr's ``testing/store.py`` and fsspec's ``tests/abstract`` serve their backends); the
concrete subclasses are in test_conformance_stores.py and test_conformance_serializers.py.

What a subclass supplies:
- StoreTests: a ``store`` fixture (a fresh, empty store), a ``broken_store`` fixture where
  the backend can be made to fail, and ``pinned_reads = False`` where the store's own
  docstring says an open handle may see a newer version.
- SerializerTests: ``name`` (its registry name), ``samples()`` (fresh values on every call:
  it runs in this process and in fresh ones) and ``assert_equal(got, want)``; optionally
  ``hostile_metas(meta)`` (descriptions that must fail) and the class attributes below.

Capability flags decide which tests apply (``Store.atomic_create``,
``WriteHandle.can_truncate``, ``ReadHandle.concurrent``, ``serializers.CODE_FREE``): where
one is false the test is skipped with that reason, never run as a test that cannot fail.

Non-goals: speed, and behaviour beyond the contract (that stays in each backend's tests).
"""

from __future__ import annotations

import builtins
import copy
import importlib
import json
import os
import random
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

import hibernate
from hibernate import serializers
from hibernate.errors import StorageError
from hibernate.storage import Store

__all__ = ["SerializerTests", "StoreTests", "child"]


def blob(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


def keys(store: Store, prefix: str = "") -> list[str]:
    return sorted(store.list(prefix))


# ---- stores ------------------------------------------------------------------------------

class StoreTests:
    """The Store contract of ``hibernate/storage/_base.py``, on a fresh empty store per test."""

    #: False where the store documents that an open handle may read a newer version; such a
    #: handle must then return one version's bytes or raise StorageError, never a mixture.
    pinned_reads: ClassVar[bool] = True
    #: size of the object written in many pieces (past a remote store's upload block size)
    large: ClassVar[int] = 1 << 20

    @pytest.fixture
    def store(self) -> Store:
        raise NotImplementedError(f"{type(self).__name__} must provide a `store` fixture")

    @pytest.fixture
    def broken_store(self) -> Store:
        pytest.skip("this backend has no failure that a test can cause")

    # -- reading -----------------------------------------------------------------------------

    @pytest.mark.parametrize("size", [0, 1, 70_001])
    def test_round_trip(self, store: Store, size: int) -> None:
        data = blob(size, size)
        store.put("dir/sub/obj", data)
        assert store.exists("dir/sub/obj") and store.get("dir/sub/obj") == data
        with store.open_read("dir/sub/obj") as h:
            assert h.size == size and h.read(0, size) == data

    def test_write_in_pieces_of_any_buffer(self, store: Store) -> None:
        import array

        data = blob(self.large + 12_345, 1)
        w = store.open_write("big")
        w.write(data[:10])
        w.write(bytearray(data[10:20]))
        w.write(memoryview(data)[20:self.large])
        w.write(memoryview(array.array("d", data[self.large:self.large + 8_000])))
        w.write(data[self.large + 8_000:])
        w.commit()
        assert store.get("big") == data

    def test_the_store_says_whether_its_reads_are_pinned(self, store: Store) -> None:
        assert store.pinned_reads is self.pinned_reads

    def test_ranged_reads_and_readinto(self, store: Store) -> None:
        data = blob(10_000, 2)
        store.put("k", data)
        for start, end in [(0, None), (5, 10), (9_990, 20_000), (10_000, None), (3, 3)]:
            assert store.get("k", start, end) == data[start:end], (start, end)
        with store.open_read("k") as h:
            fetched = h.bytes_read
            assert h.read(1_234, 100) == data[1_234:1_334] and h.read(10_000, 0) == b""
            buf = bytearray(b"\xee" * 50)
            h.readinto(7, memoryview(buf)[10:40])
            assert buf == b"\xee" * 10 + data[7:37] + b"\xee" * 10
            assert h.bytes_read - fetched >= 130  # counts what was fetched

    def test_reading_past_the_end_raises(self, store: Store) -> None:
        store.put("k", blob(100))
        with store.open_read("k") as h:
            bad: list[Callable[[], object]] = [
                lambda: h.read(99, 2), lambda: h.read(101, 0), lambda: h.read(-1, 1),
                lambda: h.readinto(98, memoryview(bytearray(3)))]
            for read in bad:
                with pytest.raises(StorageError):
                    read()
            assert h.read(0, 100) == blob(100)  # the handle still works

    def test_a_missing_key_raises(self, store: Store) -> None:
        assert not store.exists("nothing") and keys(store) == []
        with pytest.raises(StorageError):
            store.open_read("nothing")
        with pytest.raises(StorageError):
            store.get("no/such/key")

    def test_parallel_reads_where_the_handle_is_concurrent(self, store: Store) -> None:
        data = blob(200_000, 3)
        store.put("k", data)
        with store.open_read("k") as h:
            if not h.concurrent:
                pytest.skip("ReadHandle.concurrent is false")
            spans = [(i * 3_001, 2_500) for i in range(64)]
            with ThreadPoolExecutor(8) as pool:
                got = list(pool.map(lambda s: h.read(*s), spans))
        assert got == [data[s:s + n] for s, n in spans]

    # -- writing -----------------------------------------------------------------------------

    def test_an_object_appears_only_on_commit(self, store: Store) -> None:
        w = store.open_write("a/new")
        w.write(blob(5_000))
        assert not store.exists("a/new") and keys(store) == []
        with pytest.raises(StorageError):
            store.open_read("a/new")
        w.commit()
        assert store.get("a/new") == blob(5_000) and keys(store) == ["a/new"]

    def test_discard_leaves_nothing(self, store: Store) -> None:
        w = store.open_write("a/new")
        w.write(blob(self.large, 4))
        w.discard()
        assert not store.exists("a/new") and keys(store) == []

    def test_an_overwrite_is_invisible_until_commit_and_discard_keeps_the_old(
            self, store: Store) -> None:
        old = blob(3_000, 5)
        store.put("k", old)
        for finish in ("discard", "commit"):
            w = store.open_write("k")
            w.write(blob(self.large, 6))
            assert store.get("k") == old and keys(store) == ["k"]
            getattr(w, finish)()
        assert store.get("k") == blob(self.large, 6)
        store.put("k", old)  # a shorter object leaves no tail of the longer one
        assert store.get("k") == old

    def test_a_finished_writer_changes_nothing(self, store: Store) -> None:
        """A save's clean-up path may discard after a commit, or twice (once in a failed
        commit, once in the caller): that is a silent no-op."""
        w = store.open_write("k")
        w.write(b"committed")
        w.commit()
        try:
            w.write(b" and more")
        except StorageError:
            pass
        d = store.open_write("gone")
        d.write(b"dropped")
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            w.discard()
            d.discard()
            d.discard()
        assert [str(m.message) for m in seen] == [], "discarding nothing warned"
        assert store.get("k") == b"committed" and not store.exists("gone")
        try:
            d.write(b"late")
            d.commit()
        except StorageError:
            pass
        else:
            assert store.get("gone") == b"late"  # a writer reopened by the store: whole
        assert store.get("k") == b"committed"

    def test_truncate_where_the_writer_can(self, store: Store) -> None:
        w = store.open_write("k")
        if not w.can_truncate:
            w.discard()
            pytest.skip("WriteHandle.can_truncate is false")
        w.write(b"A" * 100)
        w.truncate(40)  # type: ignore[attr-defined]
        w.write(b"B" * 10)
        w.commit()
        assert store.get("k") == b"A" * 40 + b"B" * 10
        w = store.open_write("k")
        w.write(blob(5_000))
        w.truncate(0)  # type: ignore[attr-defined]
        w.write(b"only")
        w.commit()
        assert store.get("k") == b"only"

    # -- pinned reads ------------------------------------------------------------------------

    def test_an_open_handle_and_a_replaced_object(self, store: Store) -> None:
        old, new, short = blob(50_000, 7), blob(50_000, 8), blob(1_000, 9)
        store.put("k", old)
        with store.open_read("k") as h:
            for replacement in (new, short):
                store.put("k", replacement)
                self._check_stale_read(h, old, replacement, 0, 50_000)
                self._check_stale_read(h, old, replacement, 20_000, 5_000)
            store.delete("k")
            self._check_stale_read(h, old, None, 100, 1_000)

    def _check_stale_read(self, h: Any, old: bytes, new: bytes | None, start: int,
                          n: int) -> None:
        if self.pinned_reads:
            assert h.read(start, n) == old[start:start + n], "a pinned read saw another version"
            return
        try:
            got = h.read(start, n)
        except StorageError:
            return
        versions = [old] + ([new] if new is not None else [])
        assert any(got == v[start:start + n] for v in versions), "a read mixed versions"

    # -- namespace ---------------------------------------------------------------------------

    def test_list_by_prefix(self, store: Store) -> None:
        names = ["a/b/c", "a/b/d", "a/e", "ab", "f"]
        for n in names:
            store.put(n, n.encode())
        assert keys(store) == names
        assert keys(store, "a/") == ["a/b/c", "a/b/d", "a/e"]
        assert keys(store, "a/b/") == ["a/b/c", "a/b/d"]
        assert keys(store, "a") == ["a/b/c", "a/b/d", "a/e", "ab"]
        assert keys(store, "a/b/c") == ["a/b/c"]
        assert keys(store, "zz/") == [] and keys(store, "a/b/c/") == []

    def test_list_never_shows_writes_in_progress(self, store: Store) -> None:
        store.put("a/x", b"x")
        pending = [store.open_write("a/y"), store.open_write("a/x"), store.open_write("z")]
        for w in pending:
            w.write(blob(10_000))
        assert keys(store) == ["a/x"] and keys(store, "a/") == ["a/x"]
        for w in pending:
            w.discard()
        assert keys(store) == ["a/x"] and store.get("a/x") == b"x"

    def test_delete_is_idempotent(self, store: Store) -> None:
        store.delete("never/was")
        store.put("a/b", b"1")
        store.put("a/bc", b"2")
        store.delete("a/b")
        store.delete("a/b")
        assert not store.exists("a/b") and keys(store) == ["a/bc"]
        with pytest.raises(StorageError):
            store.open_read("a/b")

    def test_a_key_below_an_existing_key_is_stored_or_refused(self, store: Store) -> None:
        """A flat namespace may hold "f" and "f/g"; a store that cannot (files) refuses
        with StorageError. Neither a raw OSError nor a create() that says "exists"."""
        store.put("f", b"file")
        try:
            store.put("f/g", b"below")
        except StorageError:
            pass
        else:
            assert store.get("f/g") == b"below"
        try:
            created = store.create("f/h", b"below")
        except StorageError:
            created = None
        assert created is not False, "create() said f/h exists; it does not"
        assert store.get("f") == b"file"

    # -- create ------------------------------------------------------------------------------

    def test_create_never_overwrites(self, store: Store) -> None:
        assert store.create("lock", b"first") is True
        assert store.create("lock", b"second") is False
        store.put("other", b"put")
        assert store.create("other", b"created") is False
        assert store.create("a/view", memoryview(b"from a view")) is True
        assert store.get("lock") == b"first" and store.get("other") == b"put"
        assert store.get("a/view") == b"from a view" and keys(store, "a/") == ["a/view"]

    def test_racing_creates_have_one_winner(self, store: Store) -> None:
        if not store.atomic_create:
            pytest.skip("Store.atomic_create is false: create() is a check then a put")
        n = 8
        start = threading.Barrier(n)

        def racer(i: int) -> bool:
            start.wait()
            return store.create("lock", b"writer-%d" % i)

        with ThreadPoolExecutor(n) as pool:
            won = list(pool.map(racer, range(n)))
        assert won.count(True) == 1
        assert store.get("lock") == b"writer-%d" % won.index(True)

    # -- failures ----------------------------------------------------------------------------

    def test_backend_failures_are_storage_errors(self, broken_store: Store) -> None:
        s = broken_store
        must_fail: dict[str, Callable[[], object]] = {
            "open_read": lambda: s.open_read("k"), "get": lambda: s.get("k"),
            "put": lambda: s.put("k", b"x"), "create": lambda: s.create("k", b"x"),
            "open_write+commit": lambda: _write_commit(s, "d/k")}
        may_pass: dict[str, Callable[[], object]] = {
            "exists": lambda: s.exists("k"), "list": lambda: keys(s),
            "delete": lambda: s.delete("k")}
        wrong = {}
        for name, op in {**must_fail, **may_pass}.items():
            try:
                op()
            except StorageError:
                continue
            except Exception as e:
                wrong[name] = f"{type(e).__name__}: {e}"
                continue
            if name in must_fail:
                wrong[name] = "succeeded on a broken backend"
        assert wrong == {}


def _write_commit(s: Store, key: str) -> None:
    w = s.open_write(key)
    w.write(b"x")
    w.commit()


# ---- serializers -------------------------------------------------------------------------

LIMIT = 64 << 20  # what a hostile description may make load allocate
_JUNK: tuple[object, ...] = (None, True, -1, 2**31, 2**62, -(2**63), 1e308, "", "x", [], {},
                             [2**40, 2**40], {"k": "x"})


@dataclass
class Case:
    """One hostile load: ``strict`` ones must raise (or give back the very value)."""

    label: str
    meta: dict[str, Any]
    buffers: list[bytes]
    want: object
    strict: bool


class SerializerTests:
    """The Serializer contract of ``hibernate/serializers/_base.py``, for one registry entry."""

    name: ClassVar[str]
    #: handles every object (the fallback): no "foreign object" check
    fallback: ClassVar[bool] = False
    #: top-level meta keys that load may go without
    optional_meta: ClassVar[frozenset[str]] = frozenset()
    #: serializers that run code: the samples a data-only load restores nonetheless
    plain_samples: ClassVar[frozenset[str]] = frozenset()
    #: damage the buffers too (not for pickle: a hostile stream runs code by design)
    hostile_buffers: ClassVar[bool] = True

    def samples(self) -> dict[str, object]:
        raise NotImplementedError

    def assert_equal(self, got: object, want: object) -> None:
        raise NotImplementedError

    def hostile_metas(self, meta: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], bool]]:
        """(label, meta, strict): descriptions this serializer must refuse (strict) or may
        accept, beyond the generic ones."""
        return iter(())

    @property
    def serializer(self) -> serializers.Serializer:
        return serializers.get(self.name)

    # -- in this process ---------------------------------------------------------------------

    def test_registered(self) -> None:
        s = self.serializer
        assert self.name in serializers.REGISTRY and s.name == self.name
        assert type(s.version) is int and s.version >= 1
        assert json.loads(json.dumps(s.config())) == s.config()

    def test_handles_its_samples_only(self) -> None:
        s = self.serializer
        assert all(s.handles(v) for v in self.samples().values())
        if not self.fallback:
            assert not any(s.handles(v) for v in (object(), None, "text", [1], {"a": 1}))

    def test_dump_and_load_directly_is_exact(self) -> None:
        s, pristine = self.serializer, self.samples()
        for name, value in self.samples().items():
            d = s.dump(value)
            meta = json.loads(json.dumps(d.meta))
            assert meta == d.meta, f"{name}: meta is not plain JSON"
            copies = [bytearray(memoryview(b).tobytes()) for b in d.buffers]
            for buffers in (d.buffers, copies, [bytes(b) for b in copies]):
                self._equal(name, s.load(meta, buffers), pristine[name])
            self._equal(name, value, pristine[name])  # dump left the value alone

    def test_streaming_dump_matches_dump(self) -> None:
        s = self.serializer
        if not isinstance(s, serializers.StreamingSerializer):
            pytest.skip("not a StreamingSerializer")
        for name, value in self.samples().items():
            meta, buffers = _dump_to(s, value)
            assert meta == s.dump(value).meta, name
            self._equal(name, s.load(meta, buffers), value)

    def _equal(self, name: str, got: object, want: object) -> None:
        try:
            self.assert_equal(got, want)
        except AssertionError as e:
            raise AssertionError(f"sample {name!r}: {e}") from None

    # -- through a file, in fresh processes --------------------------------------------------

    def _save(self, path: Any) -> dict[str, object]:
        samples = self.samples()
        names = [n for n in samples if not n.isidentifier() or hasattr(builtins, n)]
        assert names == [], "sample names must be identifiers that are not builtins' names"
        report = hibernate.save(path, dict(samples))
        assert report.skipped == {}
        m = hibernate.inspect(path)
        by_group = {g.id: g.serializer.name for g in m.groups}
        stored = {e.name: e.kind if e.group is None else by_group.get(e.group, e.kind)
                  for e in m.entries}
        assert stored == {n: self.name for n in samples}, "samples went to another serializer"
        return samples

    def _child(self, mode: str, path: str) -> str:
        cls = type(self)
        dirs = [os.path.dirname(os.path.abspath(sys.modules[m].__file__ or ""))
                for m in (__name__, cls.__module__)]
        return (f"import sys\nsys.path[:0] = {dirs!r}\nimport {__name__}\n"
                f"{__name__}.child({cls.__module__!r}, {cls.__qualname__!r}, {mode!r}, "
                f"{path!r})\n")

    def test_round_trip_through_a_file_in_a_fresh_process(self, fresh: Any) -> None:
        self._save(fresh.path / "s.hib")
        got = fresh.json(self._child("round_trip", "s.hib"))
        assert got == {"failed": {}, "skipped": {}, "unequal": {}}

    def test_untrusted_file_with_data_only_runs_no_code(self, fresh: Any) -> None:
        samples = self._save(fresh.path / "u.hib")
        got = fresh.json(self._child("data_only", "u.hib"),
                         env={"HIBERNATE_KEY": "5354524e47522d0f1e2d3c4b5a69780f1e2d3c4b5a6978"})
        restored = set(samples) if self.name in serializers.CODE_FREE else self.plain_samples
        assert got["signature"] == "foreign"
        assert got["events"] == [], "a data-only load ran code or imported a module"
        assert got["failed"] == {}
        assert got["unequal"] == {}
        assert set(got["restored"]) == restored
        assert set(got["untrusted"]) == set(samples) - restored

    def test_hostile_descriptions_fail_cleanly(self, fresh: Any) -> None:
        proc = fresh.run(self._child("hostile", "progress.txt"), check=False, timeout=150)
        if proc.returncode != 0:
            log = fresh.path / "progress.txt"
            last = log.read_text().splitlines()[-1:] if log.exists() else "(before the cases)"
            pytest.fail(f"load killed the process (status {proc.returncode}) on {last}:\n"
                        f"{proc.stderr[-3000:]}")
        got = json.loads(proc.stdout.strip().splitlines()[-1])
        assert got["problems"] == []
        assert got["cases"] > 10

    # -- hostile cases -----------------------------------------------------------------------

    def hostile_cases(self) -> Iterator[Case]:
        s = self.serializer
        for name, value in self.samples().items():
            d = s.dump(value)
            meta = json.loads(json.dumps(d.meta))
            bufs = [memoryview(b).tobytes() for b in d.buffers]
            for label, m in _fuzzed(meta):
                yield Case(f"{name}: {label}", m, bufs, value, strict=False)
            required = [k for k in meta if k not in self.optional_meta]
            for k in required:
                yield Case(f"{name}: no {k!r}", _without(meta, (k,)), bufs, value, strict=True)
            if required:
                yield Case(f"{name}: empty meta", {}, bufs, value, strict=True)
            for label, m, strict in self.hostile_metas(meta):
                yield Case(f"{name}: {label}", m, bufs, value, strict=strict)
            if self.hostile_buffers:
                for label, b in _damaged(bufs):
                    yield Case(f"{name}: {label}", meta, b, value, strict=True)


class _Sink:
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, b: Any) -> int:
        self.data += b
        return memoryview(b).nbytes


def _dump_to(s: serializers.StreamingSerializer, value: object) -> tuple[dict[str, Any],
                                                                           list[Any]]:
    """``dump_to`` into a sink: (meta, [stream, *the buffers it handed over])."""
    sink, extra = _Sink(), []

    def add(b: Any) -> int:
        extra.append(b)
        return len(extra)

    meta, _ = s.dump_to(value, sink, add)
    return meta, [sink.data, *extra]


def _positions(node: object, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every position in a JSON tree, parents first."""
    if path:
        yield path
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(
        node, list) else ()
    for k, v in items:
        yield from _positions(v, (*path, k))


def _with(meta: dict[str, Any], path: tuple[Any, ...], value: object) -> dict[str, Any]:
    out = copy.deepcopy(meta)
    parent: Any = out
    for k in path[:-1]:
        parent = parent[k]
    parent[path[-1]] = copy.deepcopy(value)
    return out


def _without(meta: dict[str, Any], path: tuple[Any, ...]) -> dict[str, Any]:
    out = copy.deepcopy(meta)
    parent: Any = out
    for k in path[:-1]:
        parent = parent[k]
    del parent[path[-1]]
    return out


def _fuzzed(meta: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each position replaced by each junk value, and removed."""
    for path in _positions(meta):
        where = "/".join(map(str, path))
        yield f"{where} removed", _without(meta, path)
        for junk in _JUNK:
            yield f"{where}={junk!r}", _with(meta, path, junk)


def _damaged(bufs: list[bytes]) -> Iterator[tuple[str, list[bytes]]]:
    yield "an extra buffer", [*bufs, bytes(8)]
    for i, b in enumerate(bufs):
        yield f"buffer {i} missing", bufs[:i] + bufs[i + 1:]
        cuts = {len(b) - 1, len(b) // 2, 0} if b else set()
        changed = [(f"cut to {n}", b[:n]) for n in sorted(cuts)]
        changed += [("1 byte longer", b + b"\x01"), ("8 bytes longer", b + bytes(8))]
        for label, new in changed:
            yield f"buffer {i} {label}", [*bufs[:i], new, *bufs[i + 1:]]


# ---- the fresh processes -----------------------------------------------------------------

def child(module: str, cls: str, mode: str, path: str) -> None:
    """Entry point of the fresh processes the serializer tests start."""
    suite: SerializerTests = getattr(importlib.import_module(module), cls)()
    run = {"round_trip": _round_trip, "data_only": _data_only, "hostile": _hostile}[mode]
    print(json.dumps(run(suite, path)))


def _unequal(suite: SerializerTests, got: dict[str, object], want: dict[str, object]
             ) -> dict[str, str]:
    out = {}
    for name in got:
        try:
            suite.assert_equal(got[name], want[name])
        except Exception as e:
            out[name] = str(e)[:500] or "not equal"
    return out


def _round_trip(suite: SerializerTests, path: str) -> dict[str, Any]:
    want, ns = suite.samples(), dict[str, object]()
    r = hibernate.load(path, ns)
    missing = {n: "not restored" for n in want if n not in ns}
    return {"failed": r.failed, "skipped": {n: str(s.code) for n, s in r.skipped.items()},
            "unequal": {**missing, **_unequal(suite, ns, want)}}


_WATCH = ("exec", "compile", "import", "code.__new__", "marshal.load", "pickle.find_class",
          "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "subprocess.Popen",
          "ctypes.dlopen")


def _data_only(suite: SerializerTests, path: str) -> dict[str, Any]:
    """Load an untrusted file with data_only=True under an audit hook that records any code
    run, any module imported and any pickle global other than the plain data types."""
    from hibernate.trust._restricted import ALLOWED

    want, s = suite.samples(), suite.serializer
    for v in want.values():  # libraries finish their lazy imports here, not in the load
        s.load(*_dumped(s, v))
    hibernate.save("warm.hib", {"warm": [1]})  # and so does hibernate's reader
    hibernate.load("warm.hib", {}, data_only=True)
    events: list[str] = []
    armed = [True]

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if not armed[0] or not event.startswith(_WATCH):
            return
        if event == "import" and args[0] in sys.modules:
            return
        if event == "pickle.find_class" and tuple(args[:2]) in ALLOWED:
            return
        events.append(f"{event}: {', '.join(repr(a)[:60] for a in args[:2])}")

    sys.addaudithook(hook)
    ns: dict[str, object] = {}
    r = hibernate.load(path, ns, data_only=True)
    armed[0] = False
    return {"signature": r.signature, "restored": sorted(r.restored), "failed": r.failed,
            "untrusted": sorted(n for n, k in r.skipped.items() if str(k.code) == "untrusted"),
            "events": events, "unequal": _unequal(suite, ns, want)}


def _hostile(suite: SerializerTests, progress: str) -> dict[str, Any]:
    """Every hostile case, under an address-space limit; crashes are found by the parent
    from the progress file."""
    import resource

    s, cases = suite.serializer, list(suite.hostile_cases())
    for c in {id(c.want): c for c in cases}.values():  # warm up: lazy imports and pools
        s.load(*_dumped(s, c.want))
    peak = _peaks()
    with open("/proc/self/status") as f:
        vm = int(f.read().split("VmSize:")[1].split()[0]) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (vm + LIMIT, resource.RLIM_INFINITY))
    problems: list[str] = []
    with open(progress, "w") as log:
        for c in cases:
            log.write(c.label + "\n")
            log.flush()
            problem = _attempt(suite, c)
            grown = [a - b for a, b in zip(_peaks(), peak)]
            if max(grown) > LIMIT:
                problem = f"peak memory grew by {max(grown) >> 20} MiB"
                peak = _peaks()
            if problem:
                problems.append(f"{c.label}: {problem}")
    return {"cases": len(cases), "problems": problems[:40]}


def _dumped(s: serializers.Serializer, value: object) -> tuple[dict[str, Any], list[Any]]:
    d = s.dump(value)
    return d.meta, d.buffers


def _attempt(suite: SerializerTests, c: Case) -> str | None:
    try:
        got = suite.serializer.load(c.meta, c.buffers)
    except MemoryError:
        return f"tried to allocate more than {LIMIT >> 20} MiB"
    except Exception:
        return None
    except BaseException as e:  # a native panic, SystemExit...: not an ordinary error
        return f"raised {type(e).__name__}: {str(e)[:200]}"
    if not c.strict:
        return None
    try:
        suite.assert_equal(got, c.want)
    except Exception:
        return f"accepted: returned a different {type(got).__name__} instead of raising"
    return None


def _peaks() -> list[int]:
    """Peak resident memory and peak Arrow pool memory, in bytes."""
    import resource

    out = [resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024]
    if "pyarrow" in sys.modules:
        out.append(int(sys.modules["pyarrow"].default_memory_pool().max_memory()))
    return out
