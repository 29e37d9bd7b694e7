"""The native pandas serializer: frames, series and indexes stored as column buffers.

Round trips save in one fresh process and load in another; the checks compare against
values rebuilt in the loading process with pandas' own exact asserters (dtypes, index types,
names, flags) plus element types where pandas' asserters are lenient (None vs NaN).
"""

from __future__ import annotations

import numpy as np
import pytest

import hibernate
from hibernate import serializers

pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")

BUILD = """
import numpy as np
import pandas as pd
import pyarrow as pa

def build():
    n = 50_000
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({
        "f": rng.standard_normal(n), "i": np.arange(n, dtype=np.int32),
        "b": np.arange(n) % 3 == 0, "u": np.arange(n, dtype=np.uint16),
        "obj": pd.Series([f"s{i % 977}é" for i in range(n)], dtype=object),
        "gaps": pd.Series(["x", None, float("nan"), pd.NA] * (n // 4), dtype=object),
        "str": pd.Series([f"t{i % 7}" if i % 5 else None for i in range(n)], dtype="str"),
        "pystr": pd.Series([f"p{i}" if i % 3 else None for i in range(n)],
                           dtype=pd.StringDtype("python")),
        "arrow": pd.Series([f"a{i % 13}" for i in range(n)], dtype=pd.ArrowDtype(pa.string())),
        "arrow_int": pd.Series(pa.array([i if i % 4 else None for i in range(n)], pa.int64()),
                               dtype=pd.ArrowDtype(pa.int64())),
        "cat": pd.Categorical(rng.choice(["lo", "mid", "hi"], n), categories=["lo", "mid", "hi"],
                              ordered=True),
        "when": pd.date_range("2024-01-01", periods=n, freq="min"),
        "tz": pd.date_range("2024-03-30", periods=n, freq="min", tz="Europe/Paris"),
        "delta": pd.to_timedelta(np.arange(n), unit="s"),
        "Int64": pd.array([i if i % 6 else None for i in range(n)], dtype="Int64"),
        "Float32": pd.array([i / 2 if i % 7 else None for i in range(n)], dtype="Float32"),
        "boolean": pd.array([bool(i % 2) if i % 5 else None for i in range(n)], dtype="boolean"),
    })
    frame.index = pd.Index(np.arange(n) * 10, name="row")
    frame.attrs = {"source": "sensor", "version": 3, "tags": ["a", "b"], "meta": {"x": 1.5}}
    wide = pd.DataFrame(np.arange(12.0).reshape(3, 4),
                        columns=pd.MultiIndex.from_tuples([("a", 1), ("a", 2), ("b", 1),
                                                           ("b", 2)], names=["grp", None]),
                        index=pd.DatetimeIndex(["2024-01-01", "2024-01-02", "2024-01-03"],
                                               freq="D", name="day"))
    dup = pd.DataFrame([[1, 2, 3]], columns=["x", "x", 7])
    empty = pd.DataFrame({"a": pd.Series([], dtype="float32"), "b": pd.Series([], dtype=object)})
    series = pd.Series(pd.Categorical(["b", "a", None]), name=("pair", 2),
                       index=pd.CategoricalIndex(["u", "v", "u"], name="k"))
    tdindex = pd.timedelta_range("0s", periods=4, freq="h", name="span")
    rindex = pd.RangeIndex(5, 105, 5, name="r")
    return dict(frame=frame, wide=wide, dup=dup, empty=empty, series=series, tdindex=tdindex,
                rindex=rindex)
"""


def test_frames_series_and_indexes_round_trip_natively(fresh) -> None:
    fresh.run(BUILD + """
import hibernate
globals().update(build())
hibernate.save("p.hib")
""")
    m = hibernate.inspect(fresh.path / "p.hib")
    names = ["frame", "wide", "dup", "empty", "series", "tdindex", "rindex"]
    for name in names:
        assert m.groups[m.entry(name).group].serializer.name == "pandas", name
    got = fresh.json(BUILD + """
import json
import hibernate
r = hibernate.load("p.hib")
want = build()
checks = {}
for name, expected in want.items():
    value = globals()[name]
    try:
        if isinstance(expected, pd.DataFrame):
            pd.testing.assert_frame_equal(value, expected, check_exact=True, check_flags=True,
                                          check_index_type=True, check_column_type=True)
            assert value.attrs == expected.attrs
            assert [c.dtype for _, c in value.items()] == [c.dtype for _, c in expected.items()]
        elif isinstance(expected, pd.Series):
            pd.testing.assert_series_equal(value, expected, check_exact=True,
                                           check_index_type=True)
        else:
            pd.testing.assert_index_equal(value, expected, exact=True)
            assert getattr(value, "freq", None) == getattr(expected, "freq", None)
        checks[name] = "ok"
    except AssertionError as e:
        checks[name] = str(e)[:400]
gaps = [type(v).__name__ if v is not pd.NA else "NA" for v in frame["gaps"][:4]]
print(json.dumps({"checks": checks, "gaps": gaps, "failed": dict(r.failed),
                  "freq": str(wide.index.freq), "obj0": frame["obj"].iloc[0]}))
""")
    assert got["failed"] == {}
    assert got["checks"] == {n: "ok" for n in names}
    assert got["gaps"] == ["str", "NoneType", "float", "NA"]  # each gap kept as it was
    assert got["freq"] == "<Day>" and got["obj0"] == "s0é"


def test_object_strings_are_not_pickled_one_by_one() -> None:
    """The object-string column is stored as offsets + UTF-8 (no pickle stream at all)."""
    col = pd.Series([f"item-{i % 50}" for i in range(10_000)], dtype=object)
    ser, dumped = serializers.dump(pd.DataFrame({"s": col}))
    assert ser.name == "pandas"
    node = dumped.meta["data"][0]
    assert node["k"] == "str"
    sizes = [memoryview(dumped.buffers[i]).nbytes for i in node["b"]]
    assert sizes == [8 * 10_001, sum(len(s) for s in col)]  # offsets and text only


def test_untrusted_frames_load_with_data_only_and_run_nothing(fresh) -> None:
    fresh.run(BUILD + """
import hibernate
globals().update(build())
def helper():  # needs code: refused from an untrusted file
    return 1
hibernate.save("p.hib")
""", env={"HIBERNATE_KEY": "5354524e47522d0f1e2d3c4b5a69780f1e2d3c4b5a6978"})
    got = fresh.json(BUILD + """
import json, os, sys
import hibernate
try:
    hibernate.load("p.hib")
    plain = "loaded"
except hibernate.UntrustedFileError as e:
    plain = sorted(e.names)
calls = []
here = os.path.realpath(os.getcwd())
def watch(frame, event, arg):  # any call into code from the saving script (by value)
    f = frame.f_code.co_filename
    f = os.path.realpath(f) if os.path.isabs(f) else ""
    if event == "call" and f.startswith(here) and f != os.path.realpath(__file__):
        calls.append(f)
sys.setprofile(watch)
r = hibernate.load("p.hib", data_only=True)
sys.setprofile(None)
pd.testing.assert_frame_equal(frame, build()["frame"], check_exact=True)
print(json.dumps({"plain": plain, "restored": sorted(r.restored),
                  "untrusted": sorted(n for n, s in r.skipped.items() if s.code == "untrusted"),
                  "file_code": sorted(set(calls))}))
""")
    assert got["plain"] == ["build", "helper"]  # only the functions need code
    assert {"frame", "wide", "dup", "empty", "series", "tdindex", "rindex"} <= set(
        got["restored"])
    assert got["untrusted"] == ["build", "helper"] and got["file_code"] == []


def test_values_pandas_cannot_store_natively_fall_back_to_pickle(fresh) -> None:
    fresh.run("""
import hibernate
import pandas as pd
class Tagged(pd.DataFrame):
    pass
mixed = pd.DataFrame({"m": pd.Series([1, "a", None], dtype=object)})
floaty = pd.Series(["a", 1.5, None], dtype=object)  # a float that is not a gap
surrogate = pd.Series(["ok", "bad\\udc80"], dtype=object)
surrogate_gap = pd.Series(["bad\\udc80", None], dtype=object)
periods = pd.Series(pd.period_range("2024-01", periods=3, freq="M"))
odd_attrs = pd.DataFrame({"a": [1]})
odd_attrs.attrs = {"when": pd.Timestamp("2024-01-01")}
sub = Tagged({"a": [1, 2]})
hibernate.save("f.hib")
""")
    m = hibernate.inspect(fresh.path / "f.hib")
    for name in ("mixed", "floaty", "surrogate", "surrogate_gap", "periods", "odd_attrs",
                 "sub"):
        assert m.groups[m.entry(name).group].serializer.name == "pickle", name
    got = fresh.json("""
import json
import hibernate
import pandas as pd
r = hibernate.load("f.hib")
print(json.dumps({"failed": dict(r.failed), "mixed": [repr(v) for v in mixed["m"]],
                  "floaty": [repr(v) for v in floaty],
                  "surrogate": surrogate.iloc[1] == "bad\\udc80",
                  "periods": str(periods.dtype), "when": repr(odd_attrs.attrs["when"]),
                  "sub": type(sub).__name__}))
""")
    assert got["failed"] == {}
    assert got["mixed"] == ["1", "'a'", "None"] and got["surrogate"] is True
    assert got["floaty"] == ["'a'", "1.5", "None"]
    assert got["periods"] == "period[M]" and got["sub"] == "Tagged"
    assert got["when"] == "Timestamp('2024-01-01 00:00:00')"


def test_memory_mapped_load_of_a_frame(tmp_path) -> None:
    frame = pd.DataFrame({"x": np.arange(1_000_000, dtype=np.float64),
                          "s": pd.Series([f"v{i % 10}" for i in range(1_000_000)], dtype=object)})
    hibernate.save(tmp_path / "m.hib", {"frame": frame})
    ns: dict[str, object] = {}
    hibernate.load(tmp_path / "m.hib", ns, mmap=True)
    pd.testing.assert_frame_equal(ns["frame"], frame, check_exact=True)  # type: ignore[arg-type]
    ns["frame"].loc[0, "x"] = -1.0  # type: ignore[attr-defined]  # writable (copy on write)
    again: dict[str, object] = {}
    hibernate.load(tmp_path / "m.hib", again)
    assert again["frame"]["x"].iloc[0] == 0.0  # type: ignore[index]  # the file is untouched


# ---- a damaged or hostile description fails with a ValueError, never a crash ------------

def _dumped(obj: object) -> tuple[dict, list[bytearray]]:
    ser, d = serializers.dump(obj)
    assert ser.name == "pandas"
    return d.meta, [bytearray(memoryview(b).cast("B")) for b in d.buffers]


def _load(meta: dict, buffers: list[bytearray]) -> object:
    return serializers.get("pandas").load(meta, buffers)


def test_hostile_descriptions_are_refused() -> None:
    frame = pd.DataFrame({"n": np.arange(4, dtype=np.int64),
                          "s": pd.Series(["a", "bb", "ccc", "d"], dtype=object),
                          "c": pd.Categorical(["x", "y", "x", "y"]),
                          "a": pd.Series(["p", "q", "r", "s"], dtype=pd.ArrowDtype(pa.string()))})
    meta, bufs = _dumped(frame)
    assert isinstance(_load(meta, bufs), pd.DataFrame)
    n_col, s_col, c_col, a_col = meta["data"]

    def refused(change) -> str:  # type: ignore[no-untyped-def]
        import copy
        m, b = copy.deepcopy(meta), [bytearray(x) for x in bufs]
        change(m, b)
        with pytest.raises(ValueError) as e:
            _load(m, b)
        return str(e.value)

    def set_dtype(m, b):  # type: ignore[no-untyped-def]
        m["data"][0]["dtype"] = "|O"  # an object dtype would turn bytes into pointers

    def longer(m, b):  # type: ignore[no-untyped-def]
        m["data"][0]["n"] = 5

    def reuse(m, b):  # type: ignore[no-untyped-def]
        m["data"][0]["b"] = s_col["b"][0]

    def offsets_backwards(m, b):  # type: ignore[no-untyped-def]
        off = np.frombuffer(b[s_col["b"][0]], np.int64).copy()
        off[2], off[3] = off[3], off[2]
        b[s_col["b"][0]][:] = off.tobytes()

    def offset_past_end(m, b):  # type: ignore[no-untyped-def]
        off = np.frombuffer(b[s_col["b"][0]], np.int64).copy()
        off[-1] += 100
        b[s_col["b"][0]][:] = off.tobytes()

    def bad_utf8(m, b):  # type: ignore[no-untyped-def]
        b[s_col["b"][1]][0] = 0xFF

    def code_out_of_range(m, b):  # type: ignore[no-untyped-def]
        b[c_col["codes"]["b"]][0] = 9

    def unknown_kind(m, b):  # type: ignore[no-untyped-def]
        m["data"][1]["k"] = "eval"

    def arrow_garbage(m, b):  # type: ignore[no-untyped-def]
        b[a_col["b"]][:] = bytes(len(b[a_col["b"]]))

    def wrong_axis(m, b):  # type: ignore[no-untyped-def]
        m["index"]["stop"] = 7

    for change in (set_dtype, longer, reuse, offsets_backwards, offset_past_end, bad_utf8,
                   code_out_of_range, unknown_kind, arrow_garbage, wrong_axis):
        try:
            refused(change)
        except pytest.fail.Exception:
            raise
        except Exception as e:  # anything but ValueError is a failure of the check
            pytest.fail(f"{change.__name__}: {type(e).__name__}: {e}")


def test_pyarrow_errors_surface_as_value_errors() -> None:
    """pyarrow's own exceptions (ArrowInvalid and friends) subclass ValueError or are turned
    into one, so the restorer reports them per entry."""
    meta, bufs = _dumped(pd.Series(["a", "b"], dtype=pd.ArrowDtype(pa.string())))
    bufs[meta["values"]["b"]][:8] = b"\xff" * 8
    with pytest.raises(ValueError):
        _load(meta, bufs)
