"""Live resources come back by their own rules (whole-session issue, item 2), in a fresh
process: locks new and unlocked, objects built on them in their own state, files open for
reading at the same position if the file is unchanged, sqlite3 file databases read-only.
Files open for writing are never reopened (the peer that reopens them truncates them)."""

from __future__ import annotations

from pathlib import Path

import hibernate

SAVE = """
import queue, sqlite3, threading
import hibernate
held = threading.Lock(); held.acquire()
reentrant = threading.RLock(); reentrant.acquire()
done = threading.Event(); done.set()
waiting = threading.Event()
jobs = queue.Queue(); jobs.put("a"); jobs.put("b")
slots = threading.BoundedSemaphore(2)
text = open("lines.txt"); text.readline()
raw = open("lines.txt", "rb"); raw.read(3)
log = open("log.txt", "w"); log.write("kept"); log.flush()
db = sqlite3.connect("data.db"); db.execute("create table t (v)")
db.execute("insert into t values (41)"); db.commit()
hibernate.save("s.hib")
"""

LOAD = """
import json
import hibernate
r = hibernate.load("s.hib")
out = {"failed": r.failed, "skipped": {n: s.message for n, s in r.skipped.items()
                                       if s.code != "dunder"}}
if "held" in r.restored:
    out.update(held=[held.locked(), held.acquire(timeout=1)],
               reentrant=reentrant.acquire(timeout=1), done=done.is_set(),
               waiting=waiting.is_set(), jobs=[jobs.get_nowait(), jobs.get_nowait()],
               slots=[slots.acquire(timeout=1), slots.acquire(timeout=1),
                      slots.acquire(timeout=0.1)])
if "text" in r.restored:
    out.update(text=text.readline(), raw=raw.read(4).decode(), modes=[text.mode, raw.mode])
if "db" in r.restored:
    out["db"] = db.execute("select v from t").fetchall()
    try:
        db.execute("insert into t values (1)")
        out["db_write"] = "written"
    except Exception as e:
        out["db_write"] = type(e).__name__ + ": " + str(e)
print(json.dumps(out))
"""


def _setup(path: Path) -> None:
    (path / "lines.txt").write_text("first\nsecond\nthird\n")


def test_locks_events_queues_and_readers_come_back_live(fresh) -> None:
    _setup(fresh.path)
    fresh.run(SAVE)
    m = hibernate.inspect(fresh.path / "s.hib")
    assert {e.name: str(e.how) for e in m.entries if e.name in (
        "held", "reentrant", "text", "raw", "db", "done")} == {
        "held": "reopened", "reentrant": "reopened", "text": "reopened", "raw": "reopened",
        "db": "reopened", "done": "stored"}
    got = fresh.json(LOAD)
    assert got["failed"] == {}, got
    assert got["held"] == [False, True] and got["reentrant"] is True
    assert got["done"] is True and got["waiting"] is False
    assert got["jobs"] == ["a", "b"] and got["slots"] == [True, True, False]
    assert got["text"] == "second\n" and got["raw"] == "st\ns"
    assert got["modes"] == ["r", "rb"]
    assert got["db"] == [[41]] and "readonly" in got["db_write"]
    assert "never reopened" in got["skipped"]["log"]
    assert (fresh.path / "log.txt").read_text() == "kept"  # never truncated by a load


def test_a_file_that_changed_is_not_reopened_and_says_why(fresh) -> None:
    _setup(fresh.path)
    fresh.run(SAVE)
    (fresh.path / "lines.txt").write_text("first\nsecond\nthird\nfourth\n")
    got = fresh.json(LOAD)
    assert "changed since the save" in got["failed"]["text"], got
    assert "changed since the save" in got["failed"]["raw"], got
    assert "held" not in got["failed"] and got["held"] == [False, True]  # the rest loads
    (fresh.path / "lines.txt").unlink()
    got = fresh.json(LOAD)
    assert "is gone" in got["failed"]["text"], got


def test_what_cannot_be_reopened_is_reported_with_its_reason(fresh) -> None:
    _setup(fresh.path)
    r = fresh.json("""
        import json, sqlite3
        import hibernate
        lines = open("lines.txt")
        for first in lines:  # iterating: Python cannot tell the position
            break
        log = open("log.txt", "a")
        scratch = sqlite3.connect(":memory:")
        r = hibernate.save("s.hib")
        print(json.dumps({n: s.message for n, s in r.skipped.items() if s.code != "dunder"}))
    """)
    assert "read by iteration" in r["lines"]
    assert "never reopened" in r["log"] and "'a'" in r["log"]
    assert "in-memory database" in r["scratch"]


def test_live_resources_need_trust(fresh) -> None:
    _setup(fresh.path)
    fresh.run(SAVE)
    got = fresh.json("""
        import json
        import hibernate
        r = hibernate.load("s.hib", data_only=True)
        print(json.dumps({n: r.skipped[n].code for n in ("held", "text", "db")}))
    """, env={"HIBERNATE_KEY": "5354524e47522d0f1e2d3c4b5a69780f1e2d3c4b5a6978"})
    assert got == {"held": "untrusted", "text": "untrusted", "db": "untrusted"}
