"""Dask values saved by Dask's own workers and restored lazily on a new cluster (engines issue).

Every test runs real ``dask.distributed`` ``LocalCluster``s of worker processes in fresh
Python processes: one saves, another (with a new cluster) restores. The partitions must be
written by the workers (their process ids are in the manifest, and they are not the
client's), the manifest must be readable with no engine started, the restored values must
be equal and computed on the new cluster, and a save that fails in one partition (an
exception, or a worker killed with retries disabled) must publish nothing and leave the
previous file loading.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

pytest.importorskip("distributed")
pytest.importorskip("dask.dataframe")

CLUSTER = """
import os, sys, json, signal
import numpy as np, pandas as pd
import dask, dask.dataframe as dd, dask.array as da
from distributed import Client, LocalCluster
import hibernate

def frame():
    n = 4000
    return pd.DataFrame({"i": np.arange(n), "f": np.linspace(0, 1, n),
                         "s": [None if k % 7 == 0 else f"s{k}" for k in range(n)],
                         "when": pd.date_range("2024-01-01", periods=n, freq="min")})

def session():
    ddf = dd.from_pandas(frame(), npartitions=4).persist()
    arr = da.arange(40_000, chunks=10_000).reshape(200, 200).rechunk((100, 100)) * 1.5
    return {"ddf": ddf, "arr": arr.persist(), "col": ddf["f"].persist(),
            "lazy": da.ones((10, 10), chunks=5), "note": "plain"}

def cluster():
    return LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                        dashboard_address=None)
"""

SAVE = CLUSTER + """
if __name__ == "__main__":
    opts = json.loads(sys.argv[2]) if len(sys.argv) > 2 else None
    with cluster() as c, Client(c) as client:
        r = hibernate.save(sys.argv[1], session(), storage_options=opts)
        workers = sorted(client.run(os.getpid).values())
    print(json.dumps({"pid": os.getpid(), "workers": workers, "notes": dict(r.notes)}))
"""

LOAD = CLUSTER + """
if __name__ == "__main__":
    opts = json.loads(sys.argv[2]) if len(sys.argv) > 2 else None
    with cluster() as c, Client(c) as client:
        ns = {}
        r = hibernate.load(sys.argv[1], ns, data_only=True, storage_options=opts)
        want = session()
        pd.testing.assert_frame_equal(ns["ddf"].compute(), want["ddf"].compute())
        pd.testing.assert_series_equal(ns["col"].compute(), want["col"].compute())
        assert ns["ddf"].npartitions == 4 and ns["ddf"].divisions == want["ddf"].divisions
        got, expect = ns["arr"].compute(), want["arr"].compute()
        assert got.dtype == expect.dtype and (got == expect).all()
        assert ns["arr"].chunks == want["arr"].chunks
        # computed by the new cluster's workers
        ran = set(ns["ddf"].map_partitions(lambda p: pd.Series([os.getpid()])).compute())
        workers = set(client.run(os.getpid).values())
    print(json.dumps({"failed": r.failed, "skipped": {k: str(v) for k, v in r.skipped.items()},
                      "restored": sorted(r.restored), "ran_on_workers": ran <= workers,
                      "types": {k: type(v).__name__ for k, v in ns.items()}}))
"""


def _run(fresh: Any, code: str, *args: str) -> dict[str, Any]:
    script = fresh.path / f"step_{abs(hash(code)) % 10**8}.py"
    script.write_text(code)
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, str(script), *args], cwd=fresh.path,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _check_saved(saved: dict[str, Any], manifest: Any) -> None:
    engine = {e.name: e for e in manifest.entries if e.how == "engine"}
    assert set(engine) == {"ddf", "arr", "col"}, manifest.entries
    assert "lazy" not in engine and "graph" in saved["notes"]["lazy"]
    assert "persisted" in saved["notes"]["ddf"]
    writers = set()
    for e in engine.values():
        record = e.extra["engine"]
        assert record["engine"] == "dask" and len(record["partitions"]) == 4
        for part in record["partitions"]:
            assert part["size"] > 0 and len(part["blake3"]) == 64
            writers.add(part["writer"]["pid"])
    assert writers <= set(saved["workers"]) and saved["pid"] not in writers  # the workers
    assert engine["ddf"].extra["engine"]["rows"] == 4000


def test_persisted_collections_are_written_by_the_workers_and_come_back_lazily(fresh) -> None:
    saved = _run(fresh, SAVE, "s.hib")
    # the manifest, read in a process that never imports dask
    shown = fresh.json("""
        import json, sys, hibernate
        m = hibernate.inspect("s.hib")
        print(json.dumps({"dask": "dask" in sys.modules, "text": str(m),
                          "entries": [[e.name, str(e.how)] for e in m.entries]}))
    """)
    assert shown["dask"] is False
    assert "dask dataframe: 4 parquet partitions, 4000 rows" in shown["text"]
    import hibernate

    _check_saved(saved, hibernate.inspect(fresh.path / "s.hib"))
    loaded = _run(fresh, LOAD, "s.hib")
    assert loaded["failed"] == {} and loaded["ran_on_workers"], loaded
    assert set(loaded["restored"]) == {"ddf", "arr", "col", "note"}
    assert "lazy" in loaded["skipped"] and "untrusted" in loaded["skipped"]["lazy"]  # a graph


def test_a_damaged_partition_fails_its_entry_only(fresh) -> None:
    _run(fresh, SAVE, "s.hib")
    import hibernate

    record = next(e.extra["engine"] for e in hibernate.inspect(fresh.path / "s.hib").entries
                  if e.name == "ddf")
    part = fresh.path / "s.hib.engine" / record["partitions"][1]["path"]
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0xFF
    part.write_bytes(bytes(data))
    got = fresh.json("""
        import json, hibernate
        ns = {}
        r = hibernate.load("s.hib", ns, data_only=True)
        try:
            ns["ddf"].compute(scheduler="sync")
            err = ""
        except Exception as e:
            err = f"{type(e).__name__}: {e}"
        print(json.dumps({"err": err, "arr": float(ns["arr"].sum().compute())}))
    """)
    assert "damaged engine data" in got["err"] and "EngineError" in got["err"], got
    assert got["arr"] == 1.5 * sum(range(40_000))


FAIL = CLUSTER + """
def boom(part):
    if len(part) and part["i"].iloc[0] == 2000:
        raise RuntimeError("partition 2 cannot be written")
    return part

def die(part):
    if len(part) and part["i"].iloc[0] == 2000:
        os.kill(os.getpid(), signal.SIGKILL)  # the worker process, mid-write
    return part

if __name__ == "__main__":
    dask.config.set({"distributed.scheduler.allowed-failures": 0})
    out = {}
    with cluster() as c, Client(c):
        hibernate.save("s.hib", {"ddf": dd.from_pandas(frame(), npartitions=4).persist()})
        before = sorted(os.listdir("s.hib.engine"))
        for name, fn in (("exception", boom), ("killed", die)):
            bad = dd.from_pandas(frame(), npartitions=4).map_partitions(fn)
            try:
                hibernate.save("s.hib", {"bad": bad, "x": 1}, engines="write")
                out[name] = "saved"
            except hibernate.EngineError as e:
                out[name] = str(e)
            out[name + "_left"] = sorted(os.listdir("s.hib.engine"))
        ns = {}
        r = hibernate.load("s.hib", ns)
        out["previous"] = [sorted(r.restored), r.failed, len(ns["ddf"].compute())]
        # a successful save replaces the previous file's engine data
        hibernate.save("s.hib", {"ddf": dd.from_pandas(frame(), npartitions=2).persist()})
        out["after"] = sorted(os.listdir("s.hib.engine"))
    out["before"] = before
    print(json.dumps(out))
"""


def test_a_failed_engine_write_publishes_nothing_and_keeps_the_previous_file(fresh) -> None:
    got = _run(fresh, FAIL)
    assert "partition 2 cannot be written" in got["exception"], got
    assert "bad: dask could not write it" in got["killed"], got
    assert got["exception_left"] == got["before"] and got["killed_left"] == got["before"]
    assert got["previous"] == [["ddf"], {}, 4000]
    assert len(got["after"]) == 1 and got["after"] != got["before"], got


def test_engine_data_on_s3_is_written_and_read_by_the_workers(fresh, s3) -> None:
    opts = json.dumps(s3["options"])
    saved = _run(fresh, SAVE, "s3://sessions/engines/s.hib", opts)
    import hibernate

    _check_saved(saved, hibernate.inspect("s3://sessions/engines/s.hib",
                                          storage_options=s3["options"]))
    keys = [o["Key"] for o in s3["client"].list_objects_v2(
        Bucket="sessions", Prefix="engines/s.hib.engine/")["Contents"]]
    assert len([k for k in keys if k.endswith(".parquet")]) == 8, keys
    loaded = _run(fresh, LOAD, "s3://sessions/engines/s.hib", opts)
    assert loaded["failed"] == {} and loaded["ran_on_workers"], loaded


def test_checkpoints_reuse_unchanged_engine_data_and_prune_what_no_checkpoint_needs(
        fresh) -> None:
    got = _run(fresh, CLUSTER + """
def engine_dirs():
    return sorted(os.listdir("store/engine"))

if __name__ == "__main__":
    with cluster() as c, Client(c):
        s = session()
        first = hibernate.checkpoint("store", s)
        after_first = engine_dirs()
        hibernate.checkpoint("store", {**s, "note": "changed"})  # the same collections
        after_second = engine_dirs()
        d = s["ddf"]
        s["ddf"] = d.assign(i=d["i"] + 1, f=d["f"] + 1).persist()  # new data: written again
        hibernate.checkpoint("store", s)
        after_third = engine_dirs()
        hibernate.prune("store", keep_last=1)
        after_prune = engine_dirs()
        hibernate.export_checkpoint("store", hibernate.log("store")[0].id, "out.hib")
        hibernate.import_checkpoint("out.hib", "store2")
    ns, ns2 = {}, {}
    r = hibernate.checkout("store", namespace=ns, data_only=True)
    r2 = hibernate.load("out.hib", ns2, data_only=True)
    r3 = hibernate.checkout("store2", namespace={}, data_only=True)
    want = frame()
    want["i"] += 1; want["f"] += 1
    print(json.dumps({"dirs": [after_first, after_second, after_third, after_prune],
                      "failed": [r.failed, r2.failed, r3.failed],
                      "equal": bool((ns["ddf"].compute()["i"] == want["i"]).all()
                                    and (ns2["ddf"].compute()["f"] == want["f"]).all()),
                      "arr": float(ns2["arr"].sum().compute())}))
""")
    first, second, third, pruned = got["dirs"]
    assert len(first) == 1 and second == first, got  # nothing written again
    assert len(third) == 2, got  # the changed frame, under a new save id
    assert len(pruned) == 2 and set(pruned) == set(third), got  # arr still from the first
    assert got["failed"] == [{}, {}, {}] and got["equal"], got
    assert got["arr"] == 1.5 * sum(range(40_000))
