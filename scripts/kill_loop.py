"""SIGKILL a process that keeps saving a session, at random moments; check the file each time.

    python scripts/kill_loop.py --iterations 1000 [--seed N] [--dir DIR]

Each iteration starts a fresh interpreter (started ahead of time, so its start-up overlaps
the previous check) that saves version after version of a session to one path: a few MB to
~60 MB of numpy data plus small objects, every value derived from a ``version`` number. The
loop sleeps a random time (seeded), kills the writer with SIGKILL and checks what a user
relies on after a crash:

- the file is absent only if no save has ever completed; otherwise it loads with nothing
  failed, its signature is valid, every value matches its ``version``, and that version is
  the last one known to be complete or the one that was being written when the kill landed;
- a save from this (checking) process then removes the dead writer's temp file: no
  ``*.hib-tmp`` is left behind.

It prints one summary line, ``N kills, N files checked, 0 lost``, and exits non-zero when a
file was lost. ``tests/test_faults.py`` runs the same loop for a few dozen iterations.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
TMP_SUFFIX = ".hib-tmp"
NAMES = ("version", "label", "big", "ramp", "meta", "rows", "which")

# Sizes (MiB) of the big array, picked per version. Small ones make many complete saves per
# child (so kills land between saves and right after renames), large ones long writes.
SIZES_MB = (2, 3, 5, 8, 12, 20, 30, 45, 60)


def big_size(version: int, small: bool) -> int:
    if small:
        return 4096
    return random.Random(version).choice(SIZES_MB) << 20


def make_session(version: int, small: bool = False) -> dict[str, Any]:
    """The namespace saved as ``version``: every value is a function of the version."""
    import numpy as np

    ns: dict[str, Any] = {
        "version": version,
        "label": f"version {version}",
        "big": np.full(big_size(version, small), version % 251, dtype=np.uint8),
        "ramp": np.arange(50_000, dtype=np.int64) + version,
        "meta": {"version": version, "tag": f"v{version}", "items": list(range(version % 7))},
        "rows": [{"v": version, "i": i} for i in range(300)],
    }
    exec("def which():\n    return version\n", ns)  # saved by value; reads the namespace
    return ns


def check_session(ns: dict[str, Any], small_versions: set[int]) -> int:
    """Raise AssertionError unless ``ns`` holds one consistent version; return it."""
    import numpy as np

    assert set(ns) == set(NAMES), f"names {sorted(ns)}"
    v = ns["version"]
    assert isinstance(v, int), f"version is {v!r}"
    small = v in small_versions
    assert ns["label"] == f"version {v}", ns["label"]
    big = ns["big"]
    assert isinstance(big, np.ndarray) and big.dtype == np.uint8, type(big)
    assert big.shape == (big_size(v, small),), (v, big.shape)
    assert not (big != v % 251).any(), f"version {v}: big holds other bytes"
    assert np.array_equal(ns["ramp"], np.arange(50_000, dtype=np.int64) + v), v
    assert ns["meta"] == {"version": v, "tag": f"v{v}", "items": list(range(v % 7))}, v
    assert ns["rows"] == [{"v": v, "i": i} for i in range(300)], v
    assert ns["which"]() == v, "which() does not read the loaded namespace"
    return v


def temps(directory: Path, name: str) -> list[str]:
    return sorted(f for f in os.listdir(directory)
                  if f.startswith(f".{name}.") and f.endswith(TMP_SUFFIX))


# ---------------------------------------------------------------------------------------
# the writer (a child process)


def child(path: str) -> None:
    import numpy  # noqa: F401  (imported before READY, so start-up is not timed)

    import hibernate

    assert hibernate.trust.user_key().id  # deriving the key (once per process) is start-up
    print("READY", flush=True)
    line = sys.stdin.readline().split()
    if not line or line[0] != "GO":
        return
    version = int(line[1])
    while True:
        ns = make_session(version)
        print(f"START {version}", flush=True)
        hibernate.save(path, ns)
        print(f"DONE {version}", flush=True)
        version += 1


# ---------------------------------------------------------------------------------------
# the loop


@dataclass
class Stats:
    kills: int = 0
    checked: int = 0           # kills after which a file was there and was checked
    absent: int = 0            # kills before any save had completed (no file yet)
    lost: int = 0              # kills after which the file was missing, damaged or wrong
    mid_write: int = 0         # kills that left the dead writer's temp file behind
    new_in_place: int = 0      # kills after the rename but before the writer said DONE
    saves_done: int = 0        # saves the writers completed
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return f"{self.kills} kills, {self.checked} files checked, {self.lost} lost"

    def details(self) -> str:
        return (f"{self.absent} before any save, {self.mid_write} during a write, "
                f"{self.new_in_place} with the new version already in place, "
                f"{self.saves_done} saves completed by the writers")


class _Writer:
    def __init__(self, path: Path, workdir: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE), "--child", str(path)], cwd=workdir,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def go(self, version: int) -> None:
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        if line.strip() != "READY":
            self.proc.kill()
            _, err = self.proc.communicate()
            raise RuntimeError(f"writer did not start: {line!r}\n{err}")
        self.proc.stdin.write(f"GO {version}\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]

    def kill(self) -> tuple[bool, str, str]:
        """SIGKILL it; (whether it was still running, its stdout, its stderr)."""
        alive = self.proc.poll() is None
        if alive:
            self.proc.send_signal(signal.SIGKILL)
        out, err = self.proc.communicate(timeout=60)  # reaped: its pid is really gone
        return alive, out, err

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=60)


def run(iterations: int, workdir: Path, seed: int = 0, max_sleep: float = 0.35,
        progress: bool = False) -> Stats:
    """The kill loop. Needs HIBERNATE_KEY (or a key file) in the environment; the children
    inherit it, so the files they sign verify here."""
    import hibernate

    rng = random.Random(seed)
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "session.hib"
    stats = Stats()
    small_versions: set[int] = set()  # versions saved by this process (small ones)
    last_done: int | None = None      # the newest version known to be complete
    next_version = 1
    writer = _Writer(path, workdir)
    try:
        for it in range(iterations):
            current = writer
            current.go(next_version)
            time.sleep(rng.uniform(0, max_sleep))
            alive, out, err = current.kill()
            writer = _Writer(path, workdir)  # the next one starts while this one is checked
            if not alive:
                stats.lost += 1
                stats.problems.append(f"iteration {it}: the writer died by itself:\n{err}")
                break
            stats.kills += 1
            words = [w for w in map(str.split, out.splitlines()) if len(w) == 2]
            started = [int(w[1]) for w in words if w[0] == "START"]
            done = [int(w[1]) for w in words if w[0] == "DONE"]
            stats.saves_done += len(done)
            if done:
                last_done = done[-1]
            in_flight = started[-1] if started and (not done or started[-1] > done[-1]) else None
            allowed = {v for v in (last_done, in_flight) if v is not None}
            if started:
                next_version = started[-1] + 1
            pid = current.proc.pid
            left = temps(workdir, path.name)
            if any(f".{pid}-" in f for f in left):
                stats.mid_write += 1
            others = [f for f in left if f".{pid}-" not in f]
            problem = None
            if others:
                problem = f"temp files of earlier writers are still there: {others}"
            elif not path.exists():
                if last_done is not None:
                    problem = f"the file is gone (version {last_done} had been saved)"
                else:
                    stats.absent += 1
            else:
                ns: dict[str, Any] = {}
                try:
                    report = hibernate.load(path, ns)
                    assert not report.failed, f"failed entries: {report.failed}"
                    assert report.signature == "valid", report.signature
                    v = check_session(ns, small_versions)
                    assert v in allowed, f"version {v}, expected one of {sorted(allowed)}"
                except Exception as e:  # noqa: BLE001  (any problem is a lost file)
                    problem = f"{type(e).__name__}: {e}"
                else:
                    stats.checked += 1
                    if v == in_flight:
                        stats.new_in_place += 1
                    last_done = v
            # a save from here removes the dead writer's temp file and leaves none of its own
            if problem is None:
                small_versions.add(next_version)
                hibernate.save(path, make_session(next_version, small=True))
                last_done = next_version
                next_version += 1
                left = temps(workdir, path.name)
                if left:
                    problem = f"temp files left after a later save: {left}"
            if problem is not None:
                stats.lost += 1
                stats.problems.append(f"iteration {it} (seed {seed}, started {started[-3:]}, "
                                      f"done {done[-3:]}): {problem}")
                for f in temps(workdir, path.name):  # keep going from a clean state
                    os.unlink(workdir / f)
            if progress and (it + 1) % 50 == 0:
                print(f"  {it + 1}/{iterations}: {stats.summary()}", flush=True)
    finally:
        writer.stop()
    return stats


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--iterations", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--dir", type=Path, help="work directory (default: a new temp dir)")
    ap.add_argument("--max-sleep", type=float, default=0.35,
                    help="kill after a random 0..MAX_SLEEP s (default 0.35)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child)
        return 0
    src = HERE.parent.parent / "src"
    if src.is_dir() and str(src) not in sys.path:  # run from a checkout without installing
        sys.path.insert(0, str(src))
        os.environ["PYTHONPATH"] = os.pathsep.join(
            [str(src)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    with tempfile.TemporaryDirectory(prefix="hib-kill-") as tmp:
        # never touch the user's key or trust list: a throwaway config and key
        os.environ["HIBERNATE_CONFIG_DIR"] = str(Path(tmp) / "config")
        os.environ.setdefault("HIBERNATE_KEY", os.urandom(16).hex())
        workdir = args.dir or Path(tmp) / "work"
        print(f"seed {args.seed}, {args.iterations} iterations in {workdir}", flush=True)
        start = time.monotonic()
        stats = run(args.iterations, workdir, args.seed, args.max_sleep, progress=True)
        for p in stats.problems:
            print("LOST:", p)
        print(f"({stats.details()}; {time.monotonic() - start:.0f} s)")
        print(stats.summary())
    return 1 if stats.lost else 0


if __name__ == "__main__":
    sys.exit(main())
