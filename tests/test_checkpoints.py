"""Checkpoints: incremental, deduplicated history; checkout, diff, export/import, prune."""

from __future__ import annotations

import copy
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import hibernate


def objects(store: Path) -> set[str]:
    return {str(p.relative_to(store)) for p in (store / "chunks").rglob("*") if p.is_file()}


def test_unchanged_session_writes_no_new_chunks(tmp_path: Path) -> None:
    store = tmp_path / "store"
    ns = {"big": np.arange(3_000_000, dtype=np.float64), "small": {"k": [1, 2]}}
    first = hibernate.checkpoint(store, ns, message="first")
    before = objects(store)
    second = hibernate.checkpoint(store, ns, message="again")
    assert first.bytes_written >= ns["big"].nbytes
    assert second.bytes_written == 0 and objects(store) == before
    assert second.parent == first.id


def test_a_small_in_place_change_writes_only_its_chunk(tmp_path: Path) -> None:
    store = tmp_path / "store"
    ns = {"big": np.zeros(10_000_000)}                       # 80 MB, 20 chunks
    hibernate.checkpoint(store, ns)
    ns["big"][5_000_000:5_000_100] = 1.0                      # inside one 4 MiB chunk
    c = hibernate.checkpoint(store, ns)
    assert 0 < c.bytes_written <= 4 << 20
    out: dict = {}
    hibernate.checkout(store, c.id, out)
    np.testing.assert_array_equal(out["big"], ns["big"])


def test_checkout_branches_log_and_diff(tmp_path: Path) -> None:
    store = tmp_path / "store"
    ns = {"a": [1], "b": "x"}
    c1 = hibernate.checkpoint(store, ns, message="one")
    ns["a"].append(2)
    ns["c"] = 3
    c2 = hibernate.checkpoint(store, ns, message="two")
    assert [c.id for c in hibernate.log(store)] == [c2.id, c1.id]
    d = hibernate.diff(c1.id, c2.id, store=store)
    assert d.added == ("c",) and d.changed == ("a",) and d.removed == ()
    old: dict = {}
    r = hibernate.checkout(store, c1.id[:6], old)                # a unique prefix works
    assert old == {"a": [1], "b": "x"} and r.ok
    old["b"] = "branch"
    c3 = hibernate.checkpoint(store, old, message="branch")
    assert c3.parent == c1.id
    assert [c.id for c in hibernate.log(store)] == [c3.id, c1.id]
    assert {c.id for c in hibernate.log(store, all=True)} == {c1.id, c2.id, c3.id}
    latest: dict = {}
    hibernate.checkout(store, None, latest)
    assert latest == {"a": [1], "b": "branch"}


def test_checkout_only_changed_keeps_unchanged_objects(tmp_path: Path) -> None:
    store = tmp_path / "store"
    big = np.arange(1_000_000.0)
    ns = {"big": big, "small": [1, 2, 3]}
    c = hibernate.checkpoint(store, ns)
    ns["small"].append(4)                                     # changed since the checkpoint
    r = hibernate.checkout(store, c.id, ns, only_changed=True)
    assert ns["big"] is big                                   # left in place
    assert ns["small"] == [1, 2, 3] and r.restored == ("small",)


def test_export_and_import_keep_the_same_digests(tmp_path: Path) -> None:
    store = tmp_path / "store"
    ns = {"big": np.arange(2_000_000.0), "d": {"x": 1}}
    c = hibernate.checkpoint(store, ns)
    path = tmp_path / "c.hib"
    hibernate.export_checkpoint(store, c.id, path)
    out: dict = {}
    hibernate.load(path, out)
    np.testing.assert_array_equal(out["big"], ns["big"])
    file_digests = {ch.digest for b in hibernate.inspect(path).blobs for ch in b.chunks}
    assert file_digests <= {p.replace("/", "").replace("chunks", "").replace(".zst", "")
                            for p in objects(store)}
    other = tmp_path / "other"
    imported = hibernate.import_checkpoint(path, other)
    again = hibernate.import_checkpoint(path, store)
    assert imported.bytes_written > 0 and again.bytes_written == 0
    assert hibernate.diff(str(path), str(path)).changed == ()


def test_prune_keeps_every_kept_checkpoint_loadable(tmp_path: Path) -> None:
    store = tmp_path / "store"
    ns = {"arr": np.zeros(1_500_000)}
    ids = []
    for i in range(5):
        ns["arr"][i * 100_000] = i + 1
        ns[f"v{i}"] = np.full(600_000, i, dtype=np.float64)
        ids.append(hibernate.checkpoint(store, ns, message=f"{i}").id)
    size_before = sum(p.stat().st_size for p in (store / "chunks").rglob("*") if p.is_file())
    removed = hibernate.prune(store, keep_last=2)
    assert set(removed) == set(ids[:3])
    size_after = sum(p.stat().st_size for p in (store / "chunks").rglob("*") if p.is_file())
    assert size_after < size_before
    for cid in ids[3:]:
        out: dict = {}
        assert hibernate.checkout(store, cid, out).ok
    assert [c.id for c in hibernate.log(store, all=True)] == ids[:2:-1]
    recent = hibernate.prune(store, keep_within=datetime.timedelta(hours=1))
    assert recent == []


WRITER = """
import sys, hibernate
import numpy as np
store, tag = sys.argv[1], sys.argv[2]
ns = {"tag": tag, "data": np.zeros(300_000)}
for i in range(8):
    ns["data"][i] = i
    ns["i"] = i
    hibernate.checkpoint(store, ns, message=f"{tag}-{i}")
"""

PRUNER = """
import sys, time, hibernate
for _ in range(6):
    hibernate.prune(sys.argv[1], keep_last=3)
    time.sleep(0.05)
"""


def test_concurrent_writers_and_a_racing_prune(tmp_path: Path) -> None:
    store = tmp_path / "store"
    hibernate.checkpoint(store, {"seed": 1})
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(store), tag])
             for tag in ("w1", "w2")]
    procs.append(subprocess.Popen([sys.executable, "-c", PRUNER, str(store)]))
    for p in procs:
        assert p.wait(timeout=180) == 0
    listed = hibernate.log(store, all=True)
    assert listed
    for c in listed:
        out: dict = {}
        r = hibernate.checkout(store, c.id, out)
        assert r.ok, r.failed
        if "tag" in out:
            assert out["data"][out["i"]] == out["i"]
    assert not (store / "LOCK").exists()


def test_cli_history_commands(tmp_path: Path) -> None:
    store = tmp_path / "store"
    c1 = hibernate.checkpoint(store, {"x": 1}, message="first")
    c2 = hibernate.checkpoint(store, {"x": 2, "y": 3}, message="second")
    cli = [sys.executable, "-m", "hibernate"]

    def run(*args: str) -> str:
        proc = subprocess.run([*cli, *args], capture_output=True, text=True, cwd=tmp_path,
                              check=False)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    lines = run("log", str(store)).splitlines()
    assert lines[0].split() == ["id", "time", "message", "names", "size"]
    # newest first, HEAD marked, one row per checkpoint with its message and name count
    assert lines[2].split()[:2] == ["*", c2.id] and lines[2].split()[3:5] == ["second", "2"]
    assert lines[3].split()[0] == c1.id and "first" in lines[3]
    rows = [line.split() for line in run("diff", c1.id, c2.id, "--store", str(store))
            .splitlines()[2:]]
    assert [r[:2] for r in rows] == [["added", "y"], ["changed", "x"]]
    as_json = json.loads(run("diff", c1.id, c2.id, "--store", str(store), "--json"))
    assert [(c["change"], c["name"]) for c in as_json] == [("added", "y"), ("changed", "x")]
    assert as_json[0]["before"] == 0 and as_json[0]["after"] > 0
    logged = json.loads(run("log", str(store), "--json"))
    assert [c["id"] for c in logged] == [c2.id, c1.id] and logged[0]["message"] == "second"
    run("checkout", str(store), c1.id[:8], "--output", "old.hib")
    out: dict = {}
    hibernate.load(tmp_path / "old.hib", out)
    assert out == {"x": 1}
    run("export", str(store), c2.id, "two.hib")
    assert "imported" in run("import", str(tmp_path / "other"), "two.hib")
    # HEAD (c1, checked out) and the newest (c2) are both kept
    assert "removed 0" in run("prune", str(store), "--keep-last", "1")
    hibernate.checkpoint(store, {"x": 5})
    assert "removed 2" in run("prune", str(store), "--keep-last", "1")


def test_a_foreign_store_needs_trust(tmp_path: Path, monkeypatch) -> None:
    store = tmp_path / "store"
    hibernate.checkpoint(store, {"x": [1]})
    monkeypatch.setenv("HIBERNATE_KEY", "5354524e47522d0f1e2d3c4b5a69780f1e2d3c4b5a6978")
    with pytest.raises(hibernate.UntrustedFileError):
        hibernate.checkout(store, None, {})
    out: dict = {}
    hibernate.checkout(store, None, out, trust=True)
    assert out == {"x": [1]}


# ---- a state machine: any history, checked out at any point, gives back that state ----

class History(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        import tempfile

        self.dir = tempfile.mkdtemp()
        self.store = os.path.join(self.dir, "store")
        self.ns: dict = {}
        self.saved: list[tuple[str, dict]] = []

    @initialize()
    def start(self) -> None:
        self.ns = {"lst": [1, 2], "arr": np.zeros(70_000), "d": {"k": 1}}

    @rule(name=st.sampled_from(["lst", "d", "n", "arr"]), value=st.integers(-5, 5))
    def assign(self, name: str, value: int) -> None:
        self.ns[name] = ([value] if name == "lst" else {"k": value} if name == "d"
                         else np.full(70_000, value, dtype=np.float64) if name == "arr"
                         else value)

    @rule(value=st.integers(-5, 5))
    def mutate_in_place(self, value: int) -> None:
        if isinstance(self.ns.get("lst"), list):
            self.ns["lst"].append(value)
        if isinstance(self.ns.get("arr"), np.ndarray):
            self.ns["arr"][value % 70_000] = value
        if isinstance(self.ns.get("d"), dict):
            self.ns["d"][str(value)] = [value]

    @rule(src=st.sampled_from(["lst", "d"]), dst=st.sampled_from(["alias", "holder"]))
    def alias(self, src: str, dst: str) -> None:
        if src in self.ns:
            self.ns[dst] = self.ns[src] if dst == "alias" else {"ref": self.ns[src]}

    @rule(name=st.sampled_from(["lst", "alias", "holder", "n"]))
    def delete(self, name: str) -> None:
        self.ns.pop(name, None)

    @rule()
    def checkpoint(self) -> None:
        c = hibernate.checkpoint(self.store, self.ns)
        self.saved.append((c.id, copy.deepcopy(self.ns)))

    @rule(data=st.data())
    def checkout_any(self, data: st.DataObject) -> None:
        if not self.saved:
            return
        cid, expected = data.draw(st.sampled_from(self.saved))
        out: dict = {}
        assert hibernate.checkout(self.store, cid, out).ok
        assert out.keys() == expected.keys()
        for k, v in expected.items():
            if isinstance(v, np.ndarray):
                np.testing.assert_array_equal(out[k], v)
            else:
                assert out[k] == v, k
        for a in expected:                      # aliasing as it was at that checkpoint
            for b in expected:
                assert (out[a] is out[b]) == (expected[a] is expected[b]), (a, b)

    @invariant()
    def lock_released(self) -> None:
        assert not os.path.exists(os.path.join(self.store, "LOCK"))


TestHistory = History.TestCase
TestHistory.settings = settings(max_examples=15, stateful_step_count=12, deadline=None,
                                suppress_health_check=[HealthCheck.too_slow])


# ---- found in review ----------------------------------------------------------------

def test_prune_refuses_when_a_checkpoint_cannot_be_read(tmp_path: Path) -> None:
    store = tmp_path / "store"
    hibernate.checkpoint(store, {"a": np.zeros(600_000)})
    c2 = hibernate.checkpoint(store, {"b": np.ones(600_000)})
    ckpt = store / "checkpoints" / f"{c2.id}.ckpt"
    ckpt.write_bytes(ckpt.read_bytes().replace(b'"kind":"value"', b'"kind":"value2"'))
    before = objects(store)
    with pytest.raises(hibernate.HibernateError, match="cannot prune"):
        hibernate.prune(store, keep_last=1)
    assert objects(store) == before


def test_checkout_only_changed_restores_a_rebound_module_name(tmp_path: Path) -> None:
    import json as json_module

    store = tmp_path / "store"
    ns: dict = {"js": json_module, "v": [1]}
    c = hibernate.checkpoint(store, ns)
    ns["js"] = 5
    hibernate.checkout(store, c.id, ns, only_changed=True)
    assert ns["js"] is json_module


def test_incremental_checkpoint_after_a_prune_reserializes(tmp_path: Path) -> None:
    from hibernate.checkpoints import Reuse, record_session
    from hibernate.session import Selector

    store = tmp_path / "store"
    ns = {"big": np.arange(1_000_000.0), "n": 0}
    _, first = record_session(store, ns, Selector(None, None), "first")
    hibernate.checkpoint(store, {"other": 1})              # HEAD moves on
    hibernate.prune(store, keep_last=1)                     # first's chunks are gone
    ns["n"] = 1
    c, _ = record_session(store, ns, Selector(None, None), "again",
                          reuse=Reuse(first, {"n"}))
    out: dict = {}
    assert hibernate.checkout(store, c.id, out).ok
    np.testing.assert_array_equal(out["big"], ns["big"])


def test_lock_exit_leaves_another_holders_lock(tmp_path: Path) -> None:
    from hibernate.checkpoints import Repo

    s = Repo(tmp_path / "store", None)
    with s.lock():
        s.store.put("LOCK", b'{"token": "someone else", "time": 0}')  # broken and re-taken
    assert (tmp_path / "store" / "LOCK").exists()


def test_retain_keeps_the_newest_within_a_count_and_a_size(tmp_path) -> None:
    store = tmp_path / "store"
    for i in range(5):  # each checkpoint adds a distinct 800 KB array
        hibernate.checkpoint(store, {"a": np.full(100_000, float(i)), "i": i},
                             message=f"c{i}")
    assert hibernate.retain(store, keep_last=10) == []  # nothing due
    removed = hibernate.retain(store, keep_last=4)
    assert len(removed) == 1 and [c.message for c in hibernate.log(store)] == [
        "c4", "c3", "c2", "c1"]
    removed = hibernate.retain(store, max_bytes=2_000_000)  # two arrays fit, not three
    assert [c.message for c in hibernate.log(store)] == ["c4", "c3"], removed
    out: dict = {}
    hibernate.checkout(store, None, out)
    assert out["i"] == 4 and out["a"][0] == 4.0  # what is kept still checks out whole
    older = hibernate.log(store)[1].id
    assert hibernate.retain(store, max_bytes=1) == [older]  # the newest is always kept
    assert [c.message for c in hibernate.log(store)] == ["c4"]


def test_retain_counts_a_shared_chunk_at_its_size_whichever_record_is_read_first(
        tmp_path) -> None:
    """A checkpoint that reuses a chunk records it as 0 bytes written: the size cap counts
    it at the size the checkpoint that wrote it records (it counted 0 when the newer record
    came first, and kept everything; found by a review)."""
    store = tmp_path / "store"
    big = np.random.default_rng(0).random(250_000)  # 2 MB that compress to about as much
    for i in range(3):  # the same array each time: written once, then reused
        hibernate.checkpoint(store, {"big": big, "i": i}, message=f"c{i}")
    assert hibernate.retain(store, max_bytes=1_000_000) != []
    assert [c.message for c in hibernate.log(store)] == ["c2"]  # the newest is kept


def test_checkpoint_and_checkout_carry_the_environment(tmp_path: Path, monkeypatch) -> None:
    import random

    store = tmp_path / "store"
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.setenv("HIB_TEST_PROJECT", "alpha")
    random.seed(11)
    c = hibernate.checkpoint(store, {"x": 1}, environment=["cwd", "random"],
                             env_vars=["HIB_TEST_*"])
    expected = random.random()  # the draw the checkpointed state gives next
    from hibernate.checkpoints import Repo

    saved = Repo(store, None).read(c.id)[1].sections["environment"]
    assert set(saved) == {"cwd", "random", "env_vars"}

    def scramble() -> None:
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("HIB_TEST_PROJECT", "beta")
        random.seed(0)

    scramble()
    report = hibernate.checkout(store, None, {}, environment=True)
    assert random.random() == expected
    assert os.getcwd() == str(tmp_path / "work")
    assert os.environ["HIB_TEST_PROJECT"] == "alpha"
    assert report.environment_restored == {"cwd": "restored", "random": "restored",
                                           "sys_path": "not saved", "options": "not saved",
                                           "warnings": "not saved", "ipython": "not saved",
                                           "env_vars": "restored"}
    scramble()  # data_only: the data parts, never the directory
    report = hibernate.checkout(store, None, {}, environment=["cwd", "random"], data_only=True)
    assert random.random() == expected and os.getcwd() == str(tmp_path)
    assert report.environment_restored["cwd"].startswith("not restored")
    scramble()  # no environment unless asked
    assert hibernate.checkout(store, None, {}).environment_restored == {}
    assert os.getcwd() == str(tmp_path)


def test_checkpoint_and_checkout_magics_take_environment(tmp_path: Path,
                                                          monkeypatch) -> None:
    import random
    import types

    from hibernate._ipython import run_magic

    monkeypatch.chdir(tmp_path)
    shell = types.SimpleNamespace(user_ns={"x": 1})
    random.seed(5)
    run_magic(shell, "checkpoint --store st --environment random -m seeded")
    expected = random.random()
    random.seed(0)
    run_magic(shell, "checkout --store st --environment random")
    assert random.random() == expected
    random.seed(0)
    untouched = random.getstate()
    run_magic(shell, "checkout --store st")  # without --environment: left as it is
    assert random.getstate() == untouched


def test_a_strangers_checkpoint_gives_back_only_the_data_parts(tmp_path: Path,
                                                                 monkeypatch) -> None:
    import random

    from conftest import STRANGER_KEY, TEST_KEY

    store = tmp_path / "store"
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.setenv("HIBERNATE_KEY", STRANGER_KEY)
    random.seed(21)
    hibernate.checkpoint(store, {"x": 1}, environment=["cwd", "random"])
    expected = random.random()
    monkeypatch.setenv("HIBERNATE_KEY", TEST_KEY)  # back to our own key
    monkeypatch.chdir(tmp_path)
    random.seed(0)
    report = hibernate.checkout(store, None, {}, environment=True, data_only=True)
    assert random.random() == expected and os.getcwd() == str(tmp_path)
    assert report.environment_restored["random"] == "restored"
    assert report.environment_restored["cwd"].startswith("not restored")
