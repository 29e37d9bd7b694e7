"""Edge cases found in review: each is a behaviour a user relies on."""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

import pytest

import hibernate


def test_untrusted_import_reference_runs_no_lazy_import(fresh) -> None:
    fresh.run("""
        import concurrent.futures, hibernate
        pool_cls = concurrent.futures.ProcessPoolExecutor
        hibernate.save("lazy.hib", {"pool_cls": pool_cls, "n": 1})
    """, env={"HIBERNATE_KEY": "5354524e47522d0f1e2d3c4b5a69780f1e2d3c4b5a6978"})
    got = fresh.json("""
        import concurrent.futures, json, sys
        import hibernate
        before = set(sys.modules)
        ns = {}
        r = hibernate.load("lazy.hib", ns, data_only=True)  # data only: not even tried
        asked = {}  # asked for by name: tried, without running the lazy import
        r2 = hibernate.load("lazy.hib", asked, data_only=True, include=["pool_cls", "n"])
        print(json.dumps({"new": sorted(set(sys.modules) - before), "bound": sorted(ns),
                          "skipped": {n: s.code for n, s in r.skipped.items()},
                          "asked": sorted(asked),
                          "asked_skipped": {n: s.code for n, s in r2.skipped.items()}}))
    """)
    # concurrent.futures imports ProcessPoolExecutor lazily through its __getattr__
    assert not any(m.startswith(("concurrent.futures.process", "multiprocessing"))
                   for m in got["new"]), got["new"]
    assert got["bound"] == ["n"] and got["skipped"] == {"pool_cls": "reference"}
    assert got["asked"] == ["n"] and got["asked_skipped"] == {"pool_cls": "untrusted"}


def test_loading_twice_does_not_rebind_an_earlier_loads_class(tmp_path: Path) -> None:
    src: dict = {"__name__": "__main__", "WHO": "src"}
    exec("class C:\n    def where(self):\n        return WHO\n", src)
    p = tmp_path / "c.hib"
    hibernate.save(p, src)
    ns1: dict = {}
    ns2: dict = {}
    hibernate.load(p, ns1)
    hibernate.load(p, ns2)
    ns2["WHO"] = "ns2"
    ns1["WHO"] = "ns1"
    assert ns1["C"]().where() == "ns1" and ns2["C"]().where() == "ns2"
    with hibernate.open(p) as snap:
        snap["C"]
    assert src["C"]().where() == "src"  # the live class in the saving process is untouched


def test_save_in_a_forked_child_finishes(tmp_path: Path) -> None:
    hibernate.save(tmp_path / "parent.hib", {"x": bytes(10 << 20)})
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            hibernate.save(tmp_path / "child.hib", {"x": bytes(10 << 20)})
            os._exit(0)
        except BaseException:
            os._exit(1)
    deadline = 60
    import time

    start = time.monotonic()
    while time.monotonic() - start < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the save in the forked child hung")
    assert os.waitstatus_to_exitcode(status) == 0
    assert hibernate.inspect(tmp_path / "child.hib").signature == "valid"


def test_first_use_key_creation_races_safely(tmp_path: Path, monkeypatch) -> None:
    import subprocess

    monkeypatch.delenv("HIBERNATE_KEY")
    monkeypatch.setenv("HIBERNATE_CONFIG_DIR", str(tmp_path / "cfg"))
    code = "from hibernate.trust._keys import user_key; print(user_key().id.hex())"
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(8)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e for _, e in outs]
    assert len({o.strip() for o, _ in outs}) == 1  # everyone uses the one key that was made


def test_closure_from_a_library_keeps_identity_with_its_list(fresh) -> None:
    (fresh.path / "appender.py").write_text(
        "def make(lst):\n    def add(x):\n        lst.append(x)\n    return add\n")
    fresh.run("""
        import appender, hibernate
        log = []
        add = appender.make(log)
        hibernate.save("s.hib")
    """)
    got = fresh.json("""
        import hibernate, json
        hibernate.load("s.hib")
        add(1)
        print(json.dumps(log))
    """)
    assert got == [1]


def test_objects_that_raise_on_attribute_access_are_skipped(tmp_path: Path) -> None:
    class Proxy:
        def __getattr__(self, name: str) -> object:
            raise RuntimeError("working outside of application context")

    r = hibernate.save(tmp_path / "s.hib", {"proxy": Proxy(), "ok": 1})
    assert r.skipped["proxy"].code == "unpicklable"
    assert "application context" in r.skipped["proxy"].message
    assert [e.name for e in r.entries] == ["ok"]


def test_value_holding_the_namespace_is_skipped_not_copied(tmp_path: Path) -> None:
    ns: dict = {"big": list(range(1000))}
    ns["g"] = {"ns": ns}
    r = hibernate.save(tmp_path / "s.hib", ns)
    assert r.skipped["g"].code == "namespace"
    assert {e.name for e in r.entries} == {"big"}


def test_kept_lists_only_names_the_file_does_not_have(tmp_path: Path) -> None:
    p = tmp_path / "s.hib"
    hibernate.save(p, {"a": 1, "b": 2, "d": 4})
    ns = {"a": 0, "b": 0, "mine": 1}
    r = hibernate.load(p, ns, include=["d"])
    assert r.kept == ("mine",) and r.restored == ("d",)


def test_unclosed_snapshots_release_their_file(tmp_path: Path) -> None:
    p = tmp_path / "s.hib"
    hibernate.save(p, {"a": [1]})

    def fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    before = fds()
    for _ in range(5):
        snap = hibernate.open(p)
        assert snap["a"] == [1]
        del snap
    gc.collect()
    assert fds() == before


def test_functions_from_a_closed_snapshot_find_globals_already_read(tmp_path: Path) -> None:
    src: dict = {"__name__": "__main__", "tag": "v1"}
    exec("def who():\n    return tag\n", src)
    hibernate.save(tmp_path / "w.hib", src)
    with hibernate.open(tmp_path / "w.hib") as snap:
        who = snap["who"]
        assert snap["tag"] == "v1"
    assert who() == "v1"
