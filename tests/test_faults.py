"""Fault injection at scale: every system call of a save fails, writers are SIGKILLed at
random, a real disk fills up, writers and readers race, and files are damaged thousands of
ways. Builds on tests/test_damage.py (which covers single, chosen cases).

What a user relies on (DESIGN.md, "Errors", "The file", "Trust"):
- a save that cannot complete raises StorageError (message with the OS's reason, the
  OSError as ``__cause__``); the previous file stays byte for byte and loads; no temp file
  and no file descriptor is left behind. Once the rename has happened, a failure says the
  file was saved, and the file at the path is complete;
- whenever a save is killed, the path holds the previous complete version or the new one;
- concurrent readers see complete versions, never a partial file;
- damage is detected: a hibernate error is raised before anything is bound, or the damaged
  entries are reported in ``LoadReport.failed`` and every restored value is the original.

Seeds: HIBERNATE_FAULT_SEED (default 20240611). Sizes: HIBERNATE_KILL_ITERATIONS (default
60), HIBERNATE_FUZZ_SECONDS (default 10).
"""

from __future__ import annotations

import errno
import hashlib
import importlib.util
import json
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
import time
import types
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import hibernate

np = pytest.importorskip("numpy")

ROOT = Path(__file__).resolve().parent.parent
SEED = int(os.environ.get("HIBERNATE_FAULT_SEED", "20240611"))
KILL_ITERATIONS = int(os.environ.get("HIBERNATE_KILL_ITERATIONS", "60"))
FUZZ_SECONDS = float(os.environ.get("HIBERNATE_FUZZ_SECONDS", "10"))
TRAILER_SIZE = 128
LINUX = sys.platform.startswith("linux")


# ---------------------------------------------------------------------------------------
# helpers


def temps(directory: Path, name: str | None = None) -> list[str]:
    return sorted(f for f in os.listdir(directory) if f.endswith(".hib-tmp")
                  and (name is None or f.startswith(f".{name}.")))


def open_fds() -> list[str]:
    return sorted(os.listdir("/proc/self/fd"))


def load_script(rel: str, name: str) -> types.ModuleType:
    """Import scripts/kill_loop.py or fuzz/fuzz_reader.py by path."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / rel)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


class LoadTimeout(BaseException):
    """Not an Exception: load's per-entry `except Exception` cannot swallow it."""


@contextmanager
def time_budget(seconds: float) -> Iterator[None]:
    def on_alarm(signum: int, frame: object) -> None:
        raise LoadTimeout(f"took more than {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def manifest_span(data: bytes) -> tuple[int, int]:
    offset, length = struct.unpack_from("<QQ", data, len(data) - TRAILER_SIZE)
    assert offset + length == len(data) - TRAILER_SIZE
    return offset, length


# ---------------------------------------------------------------------------------------
# 1. a fault at every write, fsync, close, rename (and open) of a save

OPS = ("open", "write", "fsync", "close", "replace")


class SysCalls:
    """Wrappers around os.open/write/fsync/close/replace: while armed they log every call
    (with the file it concerns) and can make the k-th call of one kind fail."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.real = {op: getattr(os, op) for op in OPS}
        self.armed = False
        self.log: list[tuple[str, int, str]] = []
        self.counts: Counter[str] = Counter()
        self.fail: tuple[str, int, int] | None = None
        self.injected: OSError | None = None
        self.failed_at = -1
        self.short_writes: random.Random | None = None
        for op in OPS:
            monkeypatch.setattr(os, op, self._wrapper(op))

    @contextmanager
    def arm(self, fail: tuple[str, int, int] | None = None,
            short_writes: random.Random | None = None) -> Iterator[None]:
        self.log, self.counts, self.fail, self.injected = [], Counter(), fail, None
        self.short_writes = short_writes
        self.armed = True
        try:
            yield
        finally:
            self.armed = False

    def _what(self, op: str, args: tuple[Any, ...]) -> str:
        if op in ("write", "fsync", "close"):
            try:
                return os.readlink(f"/proc/self/fd/{args[0]}")
            except OSError:
                return f"fd {args[0]}"
        if op == "replace":
            return f"{os.fspath(args[0])} -> {os.fspath(args[1])}"
        return os.fspath(args[0])

    def _wrapper(self, op: str) -> Any:
        real = self.real[op]

        def call(*args: Any, **kw: Any) -> Any:
            if not self.armed:
                return real(*args, **kw)
            k = self.counts[op]
            self.counts[op] += 1
            self.log.append((op, k, self._what(op, args)))
            if self.fail is not None and self.fail[:2] == (op, k):
                if op == "close":
                    real(*args, **kw)  # on Linux the descriptor is released even then
                self.injected = OSError(self.fail[2], os.strerror(self.fail[2]))
                self.failed_at = len(self.log) - 1
                raise self.injected
            if op == "write" and self.short_writes is not None and len(args[1]) > 1:
                n = self.short_writes.randint(1, len(args[1]) - 1)
                return real(args[0], memoryview(args[1])[:n])
            return real(*args, **kw)

        return call


def _old_session() -> dict[str, Any]:
    return {"old": "the previous file", "n": 1, "items": [1, 2, 3]}


def _new_session() -> dict[str, Any]:
    ns: dict[str, Any] = {
        "arr": np.arange(1_000_000, dtype=np.float64),  # 8 MB: two chunks
        "small": np.ones(1000),
        "rows": [{"i": i, "s": str(i)} for i in range(2000)],
        "label": "new",
    }
    exec("def f(x):\n    return x + 1\n", ns)
    return ns


def _is_old(ns: dict[str, Any]) -> bool:
    return ns == _old_session()


def _is_new(ns: dict[str, Any]) -> bool:
    exp = _new_session()
    return (set(ns) == {"arr", "small", "rows", "label", "f"}
            and np.array_equal(ns["arr"], exp["arr"]) and np.array_equal(ns["small"], exp["small"])
            and ns["rows"] == exp["rows"] and ns["label"] == "new" and ns["f"](1) == 2)


def _loaded(path: Path) -> dict[str, Any]:
    ns: dict[str, Any] = {}
    report = hibernate.load(path, ns)
    assert not report.failed, report.failed
    return ns


@pytest.mark.skipif(not LINUX, reason="reads /proc/self/fd")
def test_fault_at_every_system_call_of_a_save(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                              ) -> None:
    target = tmp_path / "s.hib"
    calls = SysCalls(monkeypatch)
    new = _new_session()

    # one clean save, logged: how many calls of each kind, in which order, on which files
    hibernate.save(target, _old_session())
    with calls.arm():
        hibernate.save(target, new)
    reference = list(calls.log)
    counts = Counter(op for op, _, _ in reference)
    with calls.arm():
        hibernate.save(target, new)
    assert Counter(op for op, _, _ in calls.log) == counts, "the calls of a save vary"
    assert counts["write"] >= 5 and counts["fsync"] == 2 and counts["replace"] == 1, counts

    # the order that makes the save atomic and durable
    ops = [op for op, _, _ in reference]
    (rename,) = [what for op, _, what in reference if op == "replace"]
    tmp, dst = rename.split(" -> ")
    assert dst == str(target)
    assert re.fullmatch(rf"\.s\.hib\.{os.getpid()}-[0-9a-f]{{8}}\.hib-tmp", Path(tmp).name), tmp
    assert Path(tmp).parent == tmp_path, "the temp file is not in the target's directory"
    writes = [what for op, _, what in reference if op == "write"]
    assert set(writes) == {tmp}, "something other than the temp file was written"
    i_rename = ops.index("replace")
    i_fsync = [i for i, (op, _, what) in enumerate(reference) if op == "fsync" and what == tmp]
    i_close = [i for i, (op, _, what) in enumerate(reference) if op == "close" and what == tmp]
    last_write = max(i for i, op in enumerate(ops) if op == "write")
    assert len(i_fsync) == 1 and last_write < i_fsync[0] < i_rename, reference
    assert len(i_close) == 1 and i_fsync[0] < i_close[0] < i_rename, reference
    after = reference[i_rename + 1:]
    assert [(op, what) for op, _, what in after if op == "fsync"] == [("fsync", str(tmp_path))], (
        "the directory is not fsynced after the rename")
    assert "write" not in {op for op, _, _ in after}

    # now make each call fail in turn, with each errno
    hibernate.save(target, _old_session())
    old = target.read_bytes()
    injected = 0
    for op in OPS:
        for k in range(counts[op]):
            for eno in (errno.ENOSPC, errno.EIO):
                where = f"{op} #{k} ({errno.errorcode[eno]})"
                fds = open_fds()
                with calls.arm(fail=(op, k, eno)), pytest.raises(hibernate.StorageError) as info:
                    hibernate.save(target, new)
                err = info.value
                assert calls.injected is not None, f"{where}: the fault was never reached"
                injected += 1
                assert err.__cause__ is calls.injected, f"{where}: __cause__ {err.__cause__!r}"
                msg = str(err)
                assert os.strerror(eno) in msg, f"{where}: {msg!r} does not say why"
                assert "s.hib" in msg, f"{where}: {msg!r} does not say which file"
                failed_at = calls.failed_at
                assert calls.log[failed_at][:2] == (op, k)
                renamed = "replace" in [o for o, _, _ in calls.log[:failed_at]]
                if renamed:  # only the directory's open/fsync/close come after the rename
                    assert re.search(r"\bsaved\b", msg), f"{where}: {msg!r}"
                    ns = _loaded(target)
                    assert _is_new(ns) or _is_old(ns), f"{where}: the file is incomplete"
                    target.write_bytes(old)
                else:
                    assert target.read_bytes() == old, f"{where}: the previous file changed"
                    assert _is_old(_loaded(target)), where
                    later = [o for o, _, _ in calls.log[failed_at + 1:]]
                    assert "replace" not in later, f"{where}: renamed after a failure"
                    if op == "fsync":
                        assert "fsync" not in later, f"{where}: a failed fsync was retried"
                assert temps(tmp_path) == [], f"{where}: temp file left"
                assert open_fds() == fds, f"{where}: a file descriptor leaked"
    assert injected == 2 * sum(counts.values()) >= 2 * 12
    print(f"{injected} faults injected at {dict(counts)} calls")


@pytest.mark.skipif(not LINUX, reason="reads /proc/self/fd")
def test_short_writes_still_save_the_whole_file(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """os.write may write fewer bytes than asked (signals, pipes, a nearly full disk)."""
    calls = SysCalls(monkeypatch)
    target = tmp_path / "s.hib"
    with calls.arm(short_writes=random.Random(SEED)):
        report = hibernate.save(target, _new_session())
    assert calls.counts["write"] > 20
    assert report.bytes_written == target.stat().st_size
    assert _is_new(_loaded(target))


# ---------------------------------------------------------------------------------------
# 2. SIGKILL at random moments


def test_sigkill_at_random_moments_never_loses_the_file(tmp_path: Path) -> None:
    kill_loop = load_script("scripts/kill_loop.py", "hibernate_kill_loop")
    stats = kill_loop.run(KILL_ITERATIONS, tmp_path / "kill", seed=SEED)
    print(stats.summary(), f"({stats.details()})")
    assert stats.lost == 0, "\n".join(stats.problems)
    assert stats.kills == KILL_ITERATIONS
    assert stats.checked + stats.absent == stats.kills and stats.absent <= 1
    # the kills really landed inside saves, not only between them
    assert stats.mid_write >= KILL_ITERATIONS // 10, stats.details()
    assert stats.saves_done >= KILL_ITERATIONS


# ---------------------------------------------------------------------------------------
# 3. a real full disk


@contextmanager
def small_tmpfs(directory: Path, size: str = "2m") -> Iterator[Path]:
    if not LINUX or os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root on Linux")
    directory.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip() or r.returncode}")
    try:
        yield directory
    finally:
        if subprocess.run(["umount", str(directory)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(directory)], capture_output=True)


def _free(directory: Path) -> int:
    st = os.statvfs(directory)
    return st.f_bavail * st.f_frsize


def test_full_disk_fails_cleanly_and_frees_the_space(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    with small_tmpfs(tmp_path / "disk") as disk:
        target = disk / "s.hib"
        small = {"x": 1, "rows": [{"i": i} for i in range(100)]}
        hibernate.save(target, small)
        old = target.read_bytes()
        free = _free(disk)

        with pytest.raises(hibernate.StorageError) as info:
            hibernate.save(target, {"blob": np.ones(3 << 20, dtype=np.uint8), "x": 2})
        assert "No space left on device" in str(info.value), str(info.value)
        assert isinstance(info.value.__cause__, OSError)
        assert info.value.__cause__.errno == errno.ENOSPC
        assert target.read_bytes() == old
        assert _loaded(target) == small
        assert temps(disk) == []
        assert _free(disk) == free, "the failed save's space was not given back"

        # sizes around the free space: the disk fills during the array, during the small
        # pickle, manifest or trailer after it, or not at all
        real_write = os.write
        written = [0]

        def counting_write(fd: int, data: Any) -> int:
            n = real_write(fd, data)
            written[0] += n
            return n

        monkeypatch.setattr(os, "write", counting_write)
        outcomes: Counter[str] = Counter()
        for size in range(free - 8192, free + 2048, 256):
            if target.read_bytes() != old:
                target.unlink()
                hibernate.save(target, small)
                old = target.read_bytes()
            free = _free(disk)
            written[0] = 0
            ns = {"blob": np.full(size, 7, dtype=np.uint8), "x": 2}
            try:
                hibernate.save(target, ns)
            except hibernate.StorageError as e:
                assert "No space left on device" in str(e), (size, str(e))
                assert isinstance(e.__cause__, OSError) and e.__cause__.errno == errno.ENOSPC
                assert target.read_bytes() == old, size
                assert _loaded(target) == small
                assert temps(disk) == [], size
                assert _free(disk) == free, size
                outcomes["full after the array" if written[0] >= size + 64 else
                         "full in the array"] += 1
            else:
                got = _loaded(target)
                assert got["x"] == 2 and got["blob"].shape == (size,)
                assert not (got["blob"] != 7).any()
                outcomes["saved"] += 1
        print(dict(outcomes))
        assert set(outcomes) == {"saved", "full in the array", "full after the array"}, outcomes

        # and after all that, a save that fits works
        target.unlink()
        hibernate.save(target, small)
        assert _loaded(target) == small


# ---------------------------------------------------------------------------------------
# 4. concurrent writers and readers

_COMMON = '''
import numpy as np

def make(tag, seq):
    w = int(tag[1:])
    ns = {
        "tag": tag,
        "seq": seq,
        "data": np.full((2 + w) << 20, 16 * w + seq % 16, dtype=np.uint8),
        "ids": np.arange(100_000, dtype=np.int64) * (w + 1) + seq,
        "info": {"tag": tag, "seq": seq, "rows": [(tag, seq, i) for i in range(500)]},
        "text": f"{tag}-{seq};" * 100,
    }
    exec("def who():\\n    return tag, seq\\n", ns)
    del ns["__builtins__"]
    return ns

def check(ns):
    tag, seq = ns["tag"], ns["seq"]
    exp = make(tag, seq)
    assert set(ns) == set(exp), sorted(ns)
    assert np.array_equal(ns["data"], exp["data"]), "data"
    assert np.array_equal(ns["ids"], exp["ids"]), "ids"
    assert ns["info"] == exp["info"] and ns["text"] == exp["text"], "info/text"
    assert ns["who"]() == (tag, seq), "who"
    return tag, seq
'''

_WRITER = '''
import os, sys, time
import hibernate
from common import make
path, tag, n, marker, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
while not os.path.exists(go):
    time.sleep(0.001)
for seq in range(n):
    hibernate.save(path, make(tag, seq))
    os.close(os.open(marker, os.O_CREAT | os.O_WRONLY))  # a save has completed
print("WROTE", n)
'''

_READER = '''
import json, os, sys, time
import hibernate
from common import check
path, marker, go, stop = sys.argv[1:5]
while not os.path.exists(go):
    time.sleep(0.001)

def read(i):
    """Load once (every 4th time through a snapshot); the (tag, seq) it holds."""
    if i % 4 == 3:  # a snapshot: pinned to the version it opened, read while writers go on
        with hibernate.open(path) as snap:
            assert snap.manifest.signature == "valid", snap.manifest.signature
            time.sleep(0.01)
            return check({n: snap[n] for n in snap})  # (who() looks tag up in snap)
    ns = {}
    report = hibernate.load(path, ns)
    assert not report.failed, report.failed
    assert report.signature == "valid", report.signature
    return check(ns)

ok = absent = snapshots = 0
errors, last, tags = [], {}, set()
i = 0
while not os.path.exists(stop):
    i += 1
    saved_before = os.path.exists(marker)
    try:
        tag, seq = read(i)
    except hibernate.StorageError as e:
        if isinstance(e.__cause__, FileNotFoundError) and not saved_before and not ok:
            absent += 1
            continue
        errors.append(f"{type(e).__name__}: {e}")
        continue
    except AssertionError as e:
        errors.append(f"inconsistent session: {e}")
        continue
    except BaseException as e:
        errors.append(f"{type(e).__name__}: {e}")
        continue
    if seq < last.get(tag, -1):
        errors.append(f"{tag} went back from {last[tag]} to {seq}")
    last[tag] = seq
    tags.add(tag)
    ok += 1
    snapshots += i % 4 == 3
print(json.dumps({"ok": ok, "absent": absent, "snapshots": snapshots, "errors": errors[:20],
                  "tags": sorted(tags)}))
'''


def test_concurrent_writers_and_readers_see_only_complete_sessions(tmp_path: Path) -> None:
    for name, code in (("common", _COMMON), ("writer", _WRITER), ("reader", _READER)):
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(code))
    path, marker = tmp_path / "shared.hib", tmp_path / "saved-once"
    go, stop = tmp_path / "go", tmp_path / "stop"
    saves = 20

    def start(*args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, *args], cwd=tmp_path, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    writers = [start("writer.py", str(path), f"w{i}", str(saves), str(marker), str(go))
               for i in range(3)]
    readers = [start("reader.py", str(path), str(marker), str(go), str(stop))
               for _ in range(2)]
    procs = writers + readers
    try:
        time.sleep(0.5)  # let them import
        go.touch()
        for w in writers:
            out, err = w.communicate(timeout=120)
            assert w.returncode == 0 and f"WROTE {saves}" in out, err
        stop.touch()
        results = []
        for r in readers:
            out, err = r.communicate(timeout=60)
            assert r.returncode == 0, err
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    print(results)
    for res in results:
        assert res["errors"] == [], res["errors"]
        assert res["ok"] >= 5 and res["snapshots"] >= 1, res
    assert len({t for res in results for t in res["tags"]}) >= 2, results
    assert temps(tmp_path) == []
    # the last rename was some writer's last save
    ns = _loaded(path)
    assert ns["seq"] == saves - 1 and ns["who"]() == (ns["tag"], saves - 1)


# ---------------------------------------------------------------------------------------
# 5. damage at scale: every truncation, thousands of bit flips


def _check_inspect(path: Path, must_raise: bool | None) -> None:
    try:
        hibernate.inspect(path)
    except hibernate.HibernateError:
        assert must_raise is not False, "inspect raised for damage it does not read"
    else:
        assert must_raise is not True, "inspect accepted a damaged header/manifest/trailer"


def test_truncation_at_every_length_raises_format_error(tmp_path: Path) -> None:
    p = tmp_path / "small.hib"
    hibernate.save(p, {"k": 7, "s": "short text", "lst": [1, 2, 3], "d": {"a": 1, "b": None},
                       "t": (1.5, "x"), "arr": np.arange(10)})
    data = p.read_bytes()
    assert len(data) < 4096, len(data)
    bad = tmp_path / "cut.hib"
    sentinel = object()
    for n in range(len(data)):
        bad.write_bytes(data[:n])
        target: dict[str, Any] = {"keep": sentinel}
        with time_budget(5), pytest.raises(hibernate.HibernateError) as info:
            hibernate.load(bad, target)
        assert type(info.value) is hibernate.FormatError, (n, info.value)
        assert target == {"keep": sentinel}, f"truncated at {n}: names were bound"
        with pytest.raises(hibernate.FormatError):
            hibernate.inspect(bad)
        with pytest.raises(hibernate.FormatError):
            hibernate.open(bad)
    print(f"{len(data)} truncations")


def _flip_session() -> dict[str, Any]:
    ns: dict[str, Any] = {
        "arr": np.arange(120_000, dtype=np.float64),  # 960 KB
        "records": [{"id": i, "name": f"r{i}", "vals": [i, -i]} for i in range(1500)],
        "k": 7,
        "text": "some text",
        "shared": [1, 2],
    }
    ns["holder"] = {"s": ns["shared"]}
    exec("def f(x):\n    return x * 3\n", ns)
    del ns["__builtins__"]
    return ns


def _same(name: str, got: Any, exp: Any) -> bool:
    if isinstance(exp, np.ndarray):
        return (type(got) is np.ndarray and got.dtype == exp.dtype
                and np.array_equal(got, exp))
    if isinstance(exp, types.FunctionType):
        return got.__code__.co_code == exp.__code__.co_code and got(5) == exp(5)
    return type(got) is type(exp) and got == exp


def test_thousands_of_bit_flips_are_detected_or_harmless(tmp_path: Path) -> None:
    p = tmp_path / "s.hib"
    orig = _flip_session()
    hibernate.save(p, orig)
    data = p.read_bytes()
    size = len(data)
    assert 900_000 < size < 1_200_000, size
    moff, mlen = manifest_span(data)
    m = json.loads(data[moff:moff + mlen])
    # every byte's role, from the file's own layout (docs/format.md)
    role: list[Any] = ["padding"] * size
    for i in range(16):
        role[i] = "header"
    for i in range(moff, moff + mlen):
        role[i] = "manifest"
    for i in range(size - TRAILER_SIZE, size):
        role[i] = "trailer"
    owners = {}
    for b_index, blob in enumerate(m["blobs"]):
        owners[b_index] = frozenset(n for g in m["groups"] if b_index in g["blobs"]
                                    for n in g["names"])
        for c in blob["chunks"]:
            for i in range(c["offset"], c["offset"] + c["raw"]):
                role[i] = b_index
    arr_blob = next(b for g in m["groups"] if g["names"] == ["arr"] for b in g["blobs"])
    names = set(orig)

    rng = random.Random(SEED)
    not_arr = [i for i in range(size) if role[i] != arr_blob]
    flips = [(rng.randrange(size), rng.randrange(8)) for _ in range(1200)]
    flips += [(rng.choice(not_arr), rng.randrange(8)) for _ in range(1000)]
    flips += [(i, bit) for i in [*range(16), *range(size - TRAILER_SIZE, size)]
              for bit in range(8)]
    outcomes: Counter[str] = Counter()
    fd = os.open(p, os.O_RDWR)
    try:
        for n, (pos, bit) in enumerate(flips):
            os.pwrite(fd, bytes([data[pos] ^ (1 << bit)]), pos)
            where = f"bit {bit} of byte {pos} ({role[pos]})"
            sentinel = object()
            target: dict[str, Any] = {"sentinel": sentinel}
            data_only = n % 5 == 0
            try:
                with time_budget(5):
                    report = hibernate.load(p, target, data_only=data_only)
            except hibernate.HibernateError as e:
                assert role[pos] in ("header", "manifest", "trailer"), f"{where}: raised {e!r}"
                if role[pos] == "manifest":
                    assert isinstance(e, hibernate.IntegrityError), f"{where}: {e!r}"
                if role[pos] == "trailer":
                    assert isinstance(e, hibernate.FormatError), f"{where}: {e!r}"
                assert target == {"sentinel": sentinel}, f"{where}: bound names and raised"
                outcomes[f"raised {type(e).__name__}"] += 1
            else:
                assert role[pos] not in ("header", "manifest", "trailer"), (
                    f"{where}: loaded a file whose header/manifest/trailer is damaged")
                damaged = owners[role[pos]] if isinstance(role[pos], int) else frozenset()
                assert set(report.failed) == damaged, f"{where}: failed {report.failed}"
                untrusted = {n for n, s in report.skipped.items() if s.code == "untrusted"}
                assert set(report.restored) | untrusted == names - damaged, where
                if not data_only:
                    assert not untrusted, f"{where}: {untrusted} skipped from a trusted file"
                for name in report.restored:
                    assert _same(name, target[name], orig[name]), f"{where}: wrong {name}"
                if {"shared", "holder"} <= set(report.restored):
                    assert target["holder"]["s"] is target["shared"]
                assert set(target) == set(report.restored) | {"sentinel"}
                outcomes["some failed" if damaged else "all loaded"] += 1
            _check_inspect(p, role[pos] in ("header", "manifest", "trailer"))
            os.pwrite(fd, data[pos:pos + 1], pos)
    finally:
        os.close(fd)
    assert p.read_bytes() == data
    print(f"{len(flips)} bit flips: {dict(outcomes)}")
    assert len(flips) >= 2000 + 16 * 8
    assert outcomes["some failed"] > 100 and outcomes["raised IntegrityError"] > 50


# ---------------------------------------------------------------------------------------
# 6. the fuzz harness, briefly


def test_fuzz_reader_briefly(tmp_path: Path) -> None:
    fuzz = load_script("fuzz/fuzz_reader.py", "hibernate_fuzz_reader")
    stats = fuzz.run(FUZZ_SECONDS, tmp_path / "fuzz", seed=SEED)
    print(stats.summary())
    assert stats.examples >= 20 * FUZZ_SECONDS
    assert stats.strong >= 10 and stats.values_checked > 0 and stats.failed_entries > 0
    assert stats.outcomes["raise IntegrityError"] and stats.outcomes["trust: some failed"]


# ---------------------------------------------------------------------------------------
# 7. found while writing these tests


def _rewrap_unsigned(data: bytes, manifest: bytes) -> bytes:
    offset, _ = manifest_span(data)
    body = struct.pack("<QQ32s16s32sII12s", offset, len(manifest),
                       hashlib.sha256(manifest).digest(), bytes(16), bytes(32), 2, 0, bytes(12))
    return (data[:offset] + manifest + body + struct.pack("<I", zlib.crc32(body))
            + b"\x89HIBEND\n")


def test_printing_inspect_of_a_hostile_manifest_never_raises(tmp_path: Path) -> None:
    p = tmp_path / "s.hib"
    hibernate.save(p, {"x": 1})
    data = p.read_bytes()
    offset, length = manifest_span(data)
    m = json.loads(data[offset:offset + length])
    m["session"]["postmortem"] = {"exception": "E", "frames": [{"locals": 5}]}
    bad = tmp_path / "bad.hib"
    bad.write_bytes(_rewrap_unsigned(data, json.dumps(m).encode()))
    manifest = hibernate.inspect(bad)  # accepted: an unsigned file, nothing run
    assert manifest.signature == "unsigned"
    str(manifest)
    manifest._repr_html_()
