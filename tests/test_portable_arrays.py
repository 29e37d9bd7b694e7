"""Arrays inside pickled values (speed and portability issue, item 2, first part): written
in a form that names no numpy internals (``numpy._core`` in numpy 2, ``numpy.core`` in 1.x),
so they load with ``data_only`` from a stranger's file and do not depend on numpy's module
layout; identity across variables is kept; hostile arguments fail their entry."""

from __future__ import annotations

import pickle

import numpy as np

import hibernate
from hibernate._api import file_globals

STRANGER = {"HIBERNATE_KEY": "5354524e47522d0f1e2d3c4b5a69780f1e2d3c4b5a6978"}

BUILD = """
import numpy as np
import hibernate
shared = np.arange(200_000, dtype=np.float64)          # out of band
table = {"shared": shared, "fortran": np.asfortranarray(np.arange(12).reshape(3, 4)),
         "strided": np.arange(20)[::3], "when": np.array(["2024-01-01"], dtype="M8[D]"),
         "names": np.array(["ab", "c"]), "flags": np.array([True, False]),
         "empty": np.zeros((0, 3)), "complex": np.array([1j, 2]), "small": np.arange(3)}
pair = [shared, "tag"]
hibernate.save("arrays.hib")
"""


def test_arrays_in_containers_name_no_numpy_internals_and_load_data_only(fresh) -> None:
    fresh.run(BUILD, env=STRANGER)
    _, found = file_globals(fresh.path / "arrays.hib")
    called = {k for k in found if k[1]}  # (the module references np, hibernate aside)
    assert called == {("hibernate.serializers._numpy", "portable_array")}, found
    got = fresh.json("""
        import json
        import numpy as np
        import hibernate
        r = hibernate.load("arrays.hib", data_only=True)  # a stranger's file
        t = table
        print(json.dumps({
            "restored": sorted(r.restored), "failed": r.failed,
            "same": t["shared"] is pair[0], "sum": float(t["shared"].sum()),
            "fortran": [t["fortran"].flags.f_contiguous, int(t["fortran"][2, 3])],
            "strided": t["strided"].tolist(), "when": str(t["when"][0]),
            "names": t["names"].tolist(), "flags": t["flags"].tolist(),
            "empty": list(t["empty"].shape), "complex": str(t["complex"][0]),
            "writeable": bool(t["shared"].flags.writeable)}))
    """)
    assert got["failed"] == {} and {"table", "pair"} <= set(got["restored"]), got
    assert got["same"] and got["sum"] == float(sum(range(200_000)))
    assert got["fortran"] == [True, 11] and got["strided"] == [0, 3, 6, 9, 12, 15, 18]
    assert got["when"] == "2024-01-01" and got["names"] == ["ab", "c"]
    assert got["flags"] == [True, False] and got["empty"] == [0, 3]
    assert got["complex"] == "1j" and got["writeable"]


class _Hostile:
    """Pickles as a call of the array constructor with the given arguments."""

    def __init__(self, *args: object) -> None:
        self.args = args

    def __reduce__(self) -> tuple[object, ...]:
        from hibernate.serializers._numpy import portable_array

        return (portable_array, self.args)


def test_hostile_array_arguments_fail_their_entry(fresh, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HIBERNATE_KEY", STRANGER["HIBERNATE_KEY"])
    hostile = {
        "object_dtype": _Hostile("|O", (2,), "C", bytes(16)),  # bytes read as pointers
        "structured": _Hostile("[('a', '<i4')]", (1,), "C", bytes(4)),
        "too_big": _Hostile("<f8", (1 << 40,), "C", bytes(8)),
        "negative": _Hostile("<f8", (-1,), "C", bytes(8)),
        "bad_order": _Hostile("<f8", (1,), "K", bytes(8)),
        "fine": _Hostile("<i8", (2,), "C", np.arange(2, dtype="<i8").tobytes()),
    }
    hibernate.save(tmp_path / "hostile.hib", hostile)
    monkeypatch.undo()
    ns: dict = {}
    r = hibernate.load(tmp_path / "hostile.hib", ns, data_only=True)
    assert ns["fine"].tolist() == [0, 1]
    assert set(r.failed) == {"object_dtype", "structured", "too_big", "negative", "bad_order"}
    assert "not plain data" in r.failed["object_dtype"]
    assert "do not match" in r.failed["too_big"]


def test_arrays_round_trip_in_the_same_process_form(tmp_path) -> None:
    from hibernate.serializers._numpy import portable_array, portable_reduce

    for arr in (np.arange(6).reshape(2, 3), np.asfortranarray(np.ones((2, 2))),
                np.arange(10)[::2], np.array(["2024-01-01T10"], dtype="M8[h]")):
        func, args = portable_reduce(arr)  # type: ignore[misc]
        buf = args[3].raw() if isinstance(args[3], pickle.PickleBuffer) else args[3]
        back = func(args[0], args[1], args[2], bytes(buf))
        assert func is portable_array and back.dtype == arr.dtype
        assert (back == arr).all() and back.shape == arr.shape
    assert portable_reduce(np.array([object()])) is None  # object arrays keep numpy's form


FRAMES = """
import numpy as np, pandas as pd
import hibernate
df = pd.DataFrame({"x": np.arange(100_000), "s": ["a", None] * 50_000,
                   "c": pd.Categorical(["u", "v"] * 50_000)})
frames = {"df": df, "head": df.head(3)}
col = pd.Series([1.5, 2.5], index=pd.Index(["p", "q"], name="k"), name="col")
gens = [np.random.default_rng(4), np.random.RandomState(9), np.random.MT19937(2),
        np.random.default_rng(list(range(100))),  # seeds people choose: a long list and
        np.random.default_rng(np.arange(5, dtype=np.uint32))]  # an array
for g in gens[:2]:
    g.random(5) if hasattr(g, "random") else g.random_sample(5)
hibernate.save("frames.hib")
"""


def test_frames_and_generators_in_containers_load_data_only_as_their_own_forms(fresh) -> None:
    fresh.run(FRAMES, env=STRANGER)
    _, found = file_globals(fresh.path / "frames.hib")
    called = {k for k in found if k[1]}
    assert called <= {("hibernate.serializers._numpy", "portable_array"),
                      ("hibernate.serializers._numpy", "portable_random"),
                      ("hibernate.serializers._pandas", "portable_pandas")}, found
    got = fresh.json("""
        import json
        import numpy as np, pandas as pd
        import hibernate
        r = hibernate.load("frames.hib", data_only=True)  # a stranger's file
        want = pd.DataFrame({"x": np.arange(100_000), "s": ["a", None] * 50_000,
                             "c": pd.Categorical(["u", "v"] * 50_000)})
        a, b = np.random.default_rng(4), np.random.RandomState(9)
        a.random(5), b.random_sample(5)
        print(json.dumps({
            "failed": r.failed, "same": frames["df"] is df,
            "equal": bool(df.equals(want)) and bool(frames["head"].equals(want.head(3))),
            "col": [col.name, col.index.name, col.tolist()],
            "draws": [gens[0].random() == a.random(), gens[1].random_sample() == b.random_sample(),
                      gens[2].random_raw() == np.random.MT19937(2).random_raw(),
                      gens[3].random() == np.random.default_rng(list(range(100))).random(),
                      gens[4].spawn(1)[0].random() == np.random.default_rng(
                          np.arange(5, dtype=np.uint32)).spawn(1)[0].random()]}))
    """)
    assert got == {"failed": {}, "same": True, "equal": True, "col": ["col", "k", [1.5, 2.5]],
                   "draws": [True] * 5}, got


class _HostileCall:
    """Pickles as a call of hibernate's constructor ``name`` with the given arguments
    (named, not held: entries holding one function object would make one group)."""

    def __init__(self, name: str, *args: object) -> None:
        self.name, self.args = name, args

    def __reduce__(self) -> tuple[object, ...]:
        from hibernate.serializers import _numpy, _pandas

        return (getattr(_numpy, self.name, None) or getattr(_pandas, self.name), self.args)


def test_hostile_frame_and_generator_arguments_fail_their_entry(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HIBERNATE_KEY", STRANGER["HIBERNATE_KEY"])
    def pcg() -> dict:  # a state per entry (entries sharing one object make one group)
        return np.random.PCG64(1).state

    huge_range = {"kind": "series", "name": None, "values": {"k": "np", "dtype": "<i8",
                  "n": 1 << 40, "b": 0}, "index": {"k": "range", "start": 0,
                  "stop": 1 << 40, "step": 1, "name": None}}
    hostile = {
        "huge_index": [_HostileCall("portable_pandas", huge_range, (bytes(8),))],
        "object_column": [_HostileCall("portable_pandas", {
            "kind": "series", "name": None, "index": {"k": "range", "start": 0, "stop": 2,
                                                      "step": 1, "name": None},
            "values": {"k": "np", "dtype": "|O", "n": 2, "b": 0}}, (bytes(16),))],
        "unknown_generator": [_HostileCall("portable_random", "generator", "os.system", pcg(),
                                           None)],
        "wrong_state": [_HostileCall("portable_random", "generator", "MT19937", pcg(), None)],
        "fine": [_HostileCall("portable_random", "generator", "PCG64", pcg(), None)],
    }
    hibernate.save(tmp_path / "hostile.hib", hostile)
    monkeypatch.undo()
    ns: dict = {}
    r = hibernate.load(tmp_path / "hostile.hib", ns, data_only=True)
    assert ns["fine"][0].random() == np.random.Generator(np.random.PCG64(1)).random()
    assert set(r.failed) == {"huge_index", "object_column", "unknown_generator", "wrong_state"}
    assert "rows" in r.failed["huge_index"] and "not plain data" in r.failed["object_column"]


ARROW = """
import pyarrow as pa
import hibernate
t = pa.table({"n": pa.array([1, None, 3]), "s": pa.array(["a", "b", None]),
              "l": pa.array([[1], [], None], pa.list_(pa.int32()))})
tables = {"t": t, "again": t, "batch": t.to_batches()[0], "col": t.column("s"),
          "arr": pa.array(range(100_000))}
hibernate.save("arrow.hib")
"""


def test_arrow_values_in_containers_are_ipc_streams_and_load_data_only(fresh) -> None:
    fresh.run(ARROW, env=STRANGER)
    _, found = file_globals(fresh.path / "arrow.hib")
    assert {k for k in found if k[1]} == {("hibernate.serializers._arrow", "portable_arrow")}
    got = fresh.json("""
        import json
        import pyarrow as pa
        import hibernate
        r = hibernate.load("arrow.hib", data_only=True)  # a stranger's file
        t = tables["t"]
        print(json.dumps({"failed": r.failed, "same": tables["again"] is t,
                          "t": t.to_pylist(), "batch": type(tables["batch"]).__name__,
                          "col": tables["col"].to_pylist(), "sum": tables["arr"].to_pylist()[-1]}))
    """)
    assert got == {"failed": {}, "same": True, "batch": "RecordBatch",
                   "t": [{"n": 1, "s": "a", "l": [1]}, {"n": None, "s": "b", "l": []},
                         {"n": 3, "s": None, "l": None}],
                   "col": ["a", "b", None], "sum": 99_999}, got
