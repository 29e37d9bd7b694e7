"""Round trips of real session contents: save in one fresh process, load in another.

Every topic is one pair of fresh interpreters: a save script whose module-level code builds
the variables in ``__main__`` and calls ``hibernate.save("s.hib")``, and a load script that
calls ``hibernate.load("s.hib")`` and runs named checks against values rebuilt in the loading
process. The load script prints one JSON verdict: per check "ok" or the traceback.

Only the property-based test saves and loads in the test process (explicit namespace dicts),
for speed.
"""

from __future__ import annotations

import math
import textwrap
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hibernate

# ---- the two halves of every round trip -----------------------------------------------

SAVE_EPILOGUE = """
import hibernate as _hib_save_mod, json as _hib_save_json
_hib_save_report = _hib_save_mod.save("s.hib")
print(_hib_save_json.dumps({n: [s.code, s.message]
                            for n, s in _hib_save_report.skipped.items()
                            if s.code != "dunder"}))
"""

LOAD_PRELUDE = """
import json as _hib_json, sys as _hib_sys, traceback as _hib_tb
import hibernate as _hib
_hib_report = _hib.load("s.hib")
_hib_main = _hib_sys.modules["__main__"].__dict__
_hib_results = {}

def _hib_run(name, fn):
    try:
        fn()
        _hib_results[name] = "ok"
    except BaseException:
        _hib_results[name] = _hib_tb.format_exc(limit=4)

def _hib_check(fn):
    _hib_run(fn.__name__, fn)
"""

LOAD_EPILOGUE = """
print(_hib_json.dumps({
    "failed": dict(_hib_report.failed),
    "skipped": {n: [s.code, s.message] for n, s in _hib_report.skipped.items()},
    "restored": sorted(_hib_report.restored),
    "checks": _hib_results,
}))
"""


def expected_from(build: str) -> str:
    """Load-script code that rebuilds the saved values into ``_hib_exp`` (a separate dict)."""
    return (f"_hib_exp = {{}}\n"
            f"exec(compile({textwrap.dedent(build)!r}, '<expected>', 'exec'), _hib_exp)\n"
            "_hib_exp = {k: v for k, v in _hib_exp.items() if not k.startswith('__')}\n")


def roundtrip(fresh: Any, save_code: str, load_code: str) -> dict[str, Any]:
    """Save ``save_code``'s __main__ in one process, run ``load_code`` after a load in
    another; return the load script's verdict. Nothing may be skipped or fail."""
    skipped = fresh.json(textwrap.dedent(save_code) + SAVE_EPILOGUE)
    assert skipped == {}, f"the save skipped names: {skipped}"
    verdict = fresh.json(LOAD_PRELUDE + textwrap.dedent(load_code) + LOAD_EPILOGUE)
    assert verdict["failed"] == {}, verdict["failed"]
    assert verdict["skipped"] == {}, verdict["skipped"]
    return verdict


def assert_checks_ok(verdict: dict[str, Any], at_least: int) -> None:
    checks = verdict["checks"]
    bad = {name: tb for name, tb in checks.items() if tb != "ok"}
    assert not bad, "\n\n".join(f"[{name}]\n{tb}" for name, tb in bad.items())
    assert len(checks) >= at_least, sorted(checks)


# ---- builtins and the standard library ---------------------------------------------------

BUILTINS_SAVE = """
import collections, datetime, decimal, enum, fractions, pathlib, uuid

huge = 2**521 - 1
neg_huge = -(10**400)
fnan, finf, fninf, negzero, tiny = float("nan"), float("inf"), float("-inf"), -0.0, 5e-324
cplx = complex(1.5, -2.25)
cplx_inf = complex(float("inf"), -0.0)
ustr = "h\\u00e9llo w\\u00f6rld \\u2713 \\u65e5\\u672c\\u8a9e \\U0001F40D \\x00 end"
empty_str = ""
raw = bytes(range(256))
empty_bytes = b""
barr = bytearray(b"mutable\\x00\\xff")
nothing = None
yes, no = True, False
tup = (1, "two", 3.0, (4, (5,)), ())
single = (42,)
lst = [1, [2, [3, [4, [5, []]]]]]
mapping = {1: "int", 2.5: "float", (1, 2): "tuple", None: "none", frozenset({1}): "fs",
           b"k": "bytes", "s": "str", -7: "neg"}
a_set = {1, "a", (2, 3), None, 2.5}
empty_set = set()
fset = frozenset({1, 2, frozenset({3})})
rng = range(3, 100, 7)
slc = slice(1, None, -2)
deep = {"a": [{"b": ({"c": [1, {2, 3}, frozenset({4})]},)}],
        "n": {"m": {"o": {"p": [[[["bottom", (b"x", None)]]]]}}}}
selfref = [1, 2]
selfref.append(selfref)
selfdict = {"k": 1}
selfdict["me"] = selfdict
shared_inner = [1, 2]
holder = {"x": shared_inner, "y": [shared_inner]}
od = collections.OrderedDict([("z", 1), ("a", 2), ("m", 3)])
od.move_to_end("z")
dd = collections.defaultdict(list, {"x": [1]})
dd_int = collections.defaultdict(int)
dd_int["seen"] += 3
dq = collections.deque([1, 2, 3], maxlen=5)
cnt = collections.Counter("abracadabra")
Point = collections.namedtuple("Point", ["x", "y"], defaults=[0])
pt = Point(1, 2)
pts = [Point(3), Point(4, 5)]
when = datetime.datetime(2024, 2, 29, 13, 45, 30, 123456)
when_tz = datetime.datetime(2024, 2, 29, 13, 45,
                            tzinfo=datetime.timezone(datetime.timedelta(hours=5, minutes=30)))
day = datetime.date(1999, 12, 31)
clock = datetime.time(23, 59, 59, 999999)
span = datetime.timedelta(days=-3, seconds=7, microseconds=11)
dec = decimal.Decimal("3.14159265358979323846264338327950288")
dec_nan = decimal.Decimal("-NaN")
frac = fractions.Fraction(-22, 7)
uid = uuid.UUID("12345678-1234-5678-1234-567812345678")
pth = pathlib.Path("/tmp/some dir/file.txt")
rel = pathlib.PurePosixPath("a/b/../c")

class Color(enum.Enum):
    RED = 1
    GREEN = "green"

class Perm(enum.IntFlag):
    R = 4
    W = 2
    X = 1

fav = Color.GREEN
perm = Perm.R | Perm.W
palette = {Color.RED: "warm", Color.GREEN: "cool"}
"""

BUILTINS_LOAD = """
import collections as _c, datetime as _dt, decimal as _d, enum as _e, fractions as _f
import math as _m, pathlib as _p, uuid as _u

@_hib_check
def check_ints():
    assert type(huge) is int and huge == 2**521 - 1
    assert type(neg_huge) is int and neg_huge == -(10**400)
    assert yes is True and no is False and nothing is None

@_hib_check
def check_floats():
    assert type(fnan) is float and _m.isnan(fnan)
    assert finf == _m.inf and fninf == -_m.inf
    assert negzero == 0.0 and _m.copysign(1.0, negzero) == -1.0
    assert tiny == 5e-324

@_hib_check
def check_complex():
    assert type(cplx) is complex and cplx == complex(1.5, -2.25)
    assert cplx_inf.real == _m.inf and _m.copysign(1.0, cplx_inf.imag) == -1.0

@_hib_check
def check_strings_and_bytes():
    assert ustr == "h\\u00e9llo w\\u00f6rld \\u2713 \\u65e5\\u672c\\u8a9e \\U0001F40D \\x00 end"
    assert type(empty_str) is str and empty_str == ""
    assert type(raw) is bytes and raw == bytes(range(256))
    assert type(empty_bytes) is bytes and empty_bytes == b""
    assert type(barr) is bytearray and barr == bytearray(b"mutable\\x00\\xff")
    barr.append(1)  # still mutable

@_hib_check
def check_sequences():
    assert type(tup) is tuple and tup == (1, "two", 3.0, (4, (5,)), ())
    assert single == (42,)
    assert type(lst) is list and lst == [1, [2, [3, [4, [5, []]]]]]

@_hib_check
def check_dict_with_non_str_keys():
    assert mapping == {1: "int", 2.5: "float", (1, 2): "tuple", None: "none",
                       frozenset({1}): "fs", b"k": "bytes", "s": "str", -7: "neg"}
    assert list(mapping) == [1, 2.5, (1, 2), None, frozenset({1}), b"k", "s", -7]
    assert type(list(mapping)[1]) is float

@_hib_check
def check_sets():
    assert type(a_set) is set and a_set == {1, "a", (2, 3), None, 2.5}
    assert type(empty_set) is set and empty_set == set()
    assert type(fset) is frozenset and fset == frozenset({1, 2, frozenset({3})})

@_hib_check
def check_range_and_slice():
    assert type(rng) is range and rng == range(3, 100, 7)
    assert type(slc) is slice and (slc.start, slc.stop, slc.step) == (1, None, -2)

@_hib_check
def check_deep_nesting():
    assert deep == {"a": [{"b": ({"c": [1, {2, 3}, frozenset({4})]},)}],
                    "n": {"m": {"o": {"p": [[[["bottom", (b"x", None)]]]]}}}}
    assert type(deep["a"][0]["b"]) is tuple and type(deep["a"][0]["b"][0]["c"][1]) is set

@_hib_check
def check_self_reference():
    assert len(selfref) == 3 and selfref[:2] == [1, 2] and selfref[2] is selfref
    assert selfdict["me"] is selfdict and selfdict["k"] == 1

@_hib_check
def check_shared_identity():
    assert holder["x"] is shared_inner and holder["y"][0] is shared_inner
    shared_inner.append(3)
    assert holder["x"] == [1, 2, 3]

@_hib_check
def check_ordereddict():
    assert type(od) is _c.OrderedDict and list(od.items()) == [("a", 2), ("m", 3), ("z", 1)]

@_hib_check
def check_defaultdict():
    assert type(dd) is _c.defaultdict and dd.default_factory is list
    assert dict(dd) == {"x": [1]}
    assert dd["new"] == [] and "new" in dd
    assert dd_int.default_factory is int and dd_int["seen"] == 3 and dd_int["other"] == 0

@_hib_check
def check_deque():
    assert type(dq) is _c.deque and list(dq) == [1, 2, 3] and dq.maxlen == 5
    dq.extend([4, 5, 6])
    assert list(dq) == [2, 3, 4, 5, 6]

@_hib_check
def check_counter():
    assert type(cnt) is _c.Counter and cnt == _c.Counter("abracadabra")
    assert cnt.most_common(1) == [("a", 5)]

@_hib_check
def check_namedtuple_defined_in_main():
    assert type(pt) is Point and isinstance(pt, tuple) and pt == (1, 2)
    assert (pt.x, pt.y) == (1, 2) and repr(pt) == "Point(x=1, y=2)"
    assert Point._fields == ("x", "y") and Point(7) == (7, 0)
    assert Point.__module__ == "__main__"
    assert all(type(p) is Point for p in pts) and pts == [(3, 0), (4, 5)]
    assert pt._replace(y=9) == Point(1, 9)

@_hib_check
def check_datetimes():
    assert type(when) is _dt.datetime and when == _dt.datetime(2024, 2, 29, 13, 45, 30, 123456)
    assert when.tzinfo is None
    assert when_tz.utcoffset() == _dt.timedelta(hours=5, minutes=30)
    assert when_tz == _dt.datetime(2024, 2, 29, 8, 15, tzinfo=_dt.timezone.utc)
    assert type(day) is _dt.date and day == _dt.date(1999, 12, 31)
    assert clock == _dt.time(23, 59, 59, 999999)
    assert span == _dt.timedelta(days=-3, seconds=7, microseconds=11)

@_hib_check
def check_numbers_from_stdlib():
    assert type(dec) is _d.Decimal and dec == _d.Decimal("3.14159265358979323846264338327950288")
    assert str(dec) == "3.14159265358979323846264338327950288"
    assert dec_nan.is_nan() and dec_nan.is_signed()
    assert type(frac) is _f.Fraction and frac == _f.Fraction(-22, 7)

@_hib_check
def check_uuid_and_paths():
    assert type(uid) is _u.UUID and uid == _u.UUID("12345678-1234-5678-1234-567812345678")
    assert isinstance(pth, _p.Path) and pth == _p.Path("/tmp/some dir/file.txt")
    assert type(pth) is type(_p.Path("/"))
    assert type(rel) is _p.PurePosixPath and str(rel) == "a/b/../c"

@_hib_check
def check_enum_defined_in_main():
    assert isinstance(Color, _e.EnumMeta) and Color.__module__ == "__main__"
    assert type(fav) is Color and fav is Color.GREEN and fav.value == "green"
    assert Color(1) is Color.RED and [m.name for m in Color] == ["RED", "GREEN"]
    assert palette == {Color.RED: "warm", Color.GREEN: "cool"}
    assert all(type(k) is Color for k in palette)
    assert type(perm) is Perm and perm == 6 and Perm.W in perm and Perm.X not in perm
"""


def test_builtins_and_stdlib(fresh) -> None:
    verdict = roundtrip(fresh, BUILTINS_SAVE, BUILTINS_LOAD)
    assert_checks_ok(verdict, at_least=20)


# ---- numpy ----------------------------------------------------------------------------

NUMPY_BUILD = """
import numpy as np

a_bool = np.array([True, False, True])
a_i8 = np.array([-128, 0, 127], dtype=np.int8)
a_u16 = np.array([0, 1, 65535], dtype=np.uint16)
a_i64 = np.arange(-5, 5, dtype=np.int64) * (2**60 // 5)
a_f16 = np.array([0.5, -1.25, np.inf, np.nan, -0.0], dtype=np.float16)
a_f32 = np.linspace(-1, 1, 7, dtype=np.float32)
a_f64 = np.array([np.pi, -0.0, np.nan, np.inf, -np.inf, 5e-324])
a_c128 = np.array([1 + 2j, complex(np.nan, 1), -0j], dtype=np.complex128)
a_dt = np.array(["2024-01-01T00:00:00.000000001", "NaT", "1970-01-01"], dtype="datetime64[ns]")
a_td = np.array([1, -2, 3], dtype="timedelta64[ms]")
a_td_nat = np.array([5, "NaT"], dtype="timedelta64[s]")
a_u10 = np.array(["h\\u00e9llo", "", "\\u2713" * 10], dtype="U10")
a_s5 = np.array([b"ab", b"\\x00\\xffxyz", b""], dtype="S5")
rec_dt = np.dtype([("name", "U8"), ("pos", "<f8", (2,)), ("flag", "?"), ("n", ">i4")])
a_struct = np.array([("one", (1.0, 2.0), True, 7), ("two", (3.5, -1.0), False, -9)],
                    dtype=rec_dt)
a_fort = np.asfortranarray(np.arange(24, dtype=np.float64).reshape(4, 6))
a_fort_big = np.asfortranarray(np.arange(100_000, dtype=np.float32).reshape(250, 400))
big_base = np.arange(200_000, dtype=np.int32).reshape(400, 500)
a_strided = big_base[::3, 1::7]
a_strided_1d = np.arange(50_000, dtype=np.float64)[::-5]
a_T = big_base.T
small_T = np.arange(12, dtype=np.int16).reshape(3, 4).T
a_0d = np.array(3.5)
a_0d_int = np.array(7, dtype=np.uint8)
a_0d_str = np.array("zero-d", dtype="U6")
a_empty = np.empty((0, 3), dtype=np.int32)
a_empty_u = np.array([], dtype="U3")
a_obj = np.array([1, "two", None, [3, 4], {"five": 5}, 6.5], dtype=object)
s_f16 = np.float16(0.1)
s_f32 = np.float32(1.5)
s_f64 = np.float64(-0.0)
s_i64 = np.int64(-2**62)
s_u8 = np.uint8(255)
s_bool = np.bool_(True)
s_c64 = np.complex64(1 - 1j)
s_dt = np.datetime64("2024-03-01T12:00", "m")
s_td = np.timedelta64(5, "D")
s_str = np.str_("x\\u00e9")
s_bytes = np.bytes_(b"ab")
s_void = a_struct[0]
gen = np.random.default_rng(12345)
"""

NUMPY_LOAD = expected_from(NUMPY_BUILD) + """
import numpy as _np

def _same_array(got, exp):
    assert type(got) is type(exp), type(got)
    assert got.dtype == exp.dtype, (got.dtype, exp.dtype)
    assert got.shape == exp.shape, (got.shape, exp.shape)
    if exp.dtype.hasobject:
        assert got.tolist() == exp.tolist()
    else:
        _np.testing.assert_array_equal(got, exp, strict=True)
        assert (_np.ascontiguousarray(got).tobytes()
                == _np.ascontiguousarray(exp).tobytes()), "bytes differ"
    assert got.flags.writeable, "restored array is read-only"

for _name, _exp in _hib_exp.items():
    if isinstance(_exp, _np.ndarray):
        _hib_run("array_" + _name, lambda: _same_array(_hib_main[_name], _exp))

def _same_scalar(got, exp):
    assert type(got) is type(exp), (type(got), type(exp))
    assert got.dtype == exp.dtype, (got.dtype, exp.dtype)
    assert got.tobytes() == exp.tobytes(), (got, exp)

for _name, _exp in _hib_exp.items():
    if isinstance(_exp, _np.generic):
        _hib_run("scalar_" + _name, lambda: _same_scalar(_hib_main[_name], _exp))

@_hib_check
def check_every_name_restored():
    missing = set(_hib_exp) - set(_hib_report.restored)
    assert not missing, missing

@_hib_check
def check_fortran_order():
    for a in (a_fort, a_fort_big):
        assert a.flags.f_contiguous and not a.flags.c_contiguous, a.flags

@_hib_check
def check_structured_fields():
    assert a_struct.dtype.names == ("name", "pos", "flag", "n")
    assert a_struct.dtype["n"] == _np.dtype(">i4") and a_struct.dtype["pos"].shape == (2,)
    assert a_struct["name"].tolist() == ["one", "two"]
    _np.testing.assert_array_equal(a_struct["pos"], [[1.0, 2.0], [3.5, -1.0]])

@_hib_check
def check_object_array_elements():
    assert a_obj[3] == [3, 4] and type(a_obj[3]) is list and a_obj[2] is None
    assert a_obj[4] == {"five": 5}

@_hib_check
def check_views_are_usable():
    _np.testing.assert_array_equal(a_strided, _hib_exp["big_base"][::3, 1::7])
    _np.testing.assert_array_equal(a_T, _hib_exp["big_base"].T)
    a_strided[0, 0] = -1  # writable and not aliasing anything unexpected
    assert a_strided[0, 0] == -1

@_hib_check
def check_random_generator_state():
    assert type(gen) is type(_hib_exp["gen"])
    _np.testing.assert_array_equal(gen.random(5), _hib_exp["gen"].random(5))
"""


def test_numpy_dtypes_layouts_and_scalars(fresh) -> None:
    verdict = roundtrip(fresh, NUMPY_BUILD, NUMPY_LOAD)
    checks = verdict["checks"]
    assert sum(k.startswith("array_") for k in checks) == 27, sorted(checks)
    assert sum(k.startswith("scalar_") for k in checks) == 12, sorted(checks)
    assert_checks_ok(verdict, at_least=45)


LARGE_BUILD = """
import numpy as np
large = np.random.default_rng(2024).standard_normal(6_553_600)  # 50 MiB of float64
large_2d = np.arange(1_000_000, dtype=np.int64).reshape(1000, 1000)
"""

LARGE_LOAD = expected_from(LARGE_BUILD) + """
import numpy as _np

@_hib_check
def check_large_array():
    exp = _hib_exp["large"]
    assert type(large) is _np.ndarray and large.dtype == _np.float64
    assert large.shape == (6_553_600,) and large.nbytes == 50 * 2**20
    assert _np.array_equal(large, exp)
    assert large.tobytes() == exp.tobytes()
    assert large.flags.writeable

@_hib_check
def check_large_2d():
    _np.testing.assert_array_equal(large_2d, _hib_exp["large_2d"], strict=True)
"""


def test_large_array(fresh) -> None:
    verdict = roundtrip(fresh, LARGE_BUILD, LARGE_LOAD)
    assert_checks_ok(verdict, at_least=2)
    assert (fresh.path / "s.hib").stat().st_size > 50 * 2**20
    entries = {e.name: e for e in hibernate.inspect(fresh.path / "s.hib").entries}
    assert entries["large"].kind == "value"
    assert entries["large"].shape == (6_553_600,) and entries["large"].dtype == "float64"
    assert entries["large_2d"].shape == (1000, 1000) and entries["large_2d"].dtype == "int64"


# ---- pandas ---------------------------------------------------------------------------

PANDAS_BUILD = """
import numpy as np
import pandas as pd
import pyarrow as pa

df_basic = pd.DataFrame({
    "i": np.array([1, -2, 3], dtype=np.int64),
    "i32": np.array([7, 8, 9], dtype=np.int32),
    "f": [1.5, np.nan, -0.0],
    "b": [True, False, True],
    "o": pd.Series(["a", "", "\\u00fc"], dtype=object),
    "s": ["x", "y", None],
}, index=pd.Index([10, 20, 30], name="key"))
df_basic.attrs = {"source": "unit test", "version": 3, "nested": {"a": [1, 2]}}
df_cat = pd.DataFrame({
    "level": pd.Categorical(["low", "high", "mid", "low", None],
                            categories=["low", "mid", "high"], ordered=True),
    "n": range(5),
})
ser_tz = pd.Series(pd.date_range("2024-03-09 22:00", periods=8, freq="h",
                                 tz="America/New_York"), name="when")
df_tz = pd.DataFrame({"utc": pd.date_range("2024-01-01", periods=3, freq="D", tz="UTC"),
                      "ny": pd.date_range("2024-01-01", periods=3, freq="D",
                                          tz="America/New_York")})
df_nullable = pd.DataFrame({
    "I": pd.array([1, None, 3], dtype="Int64"),
    "B": pd.array([True, None, False], dtype="boolean"),
    "F": pd.array([0.5, None, 1.0], dtype="Float64"),
})
df_arrow = pd.DataFrame({
    "a": pd.Series(["x", None, "z\\u00e9"], dtype=pd.ArrowDtype(pa.string())),
    "sp": pd.Series(["p", None, "q"], dtype="string[pyarrow]"),
    "ai": pd.Series([1, None, 3], dtype=pd.ArrowDtype(pa.int64())),
})
mi_rows = pd.MultiIndex.from_product([["a", "b"], [1, 2, 3]], names=["letter", "num"])
mi_cols = pd.MultiIndex.from_tuples([("x", "one"), ("x", "two"), ("y", "one")],
                                    names=["outer", "inner"])
df_multi = pd.DataFrame(np.arange(18, dtype=np.float64).reshape(6, 3), index=mi_rows,
                        columns=mi_cols)
ser = pd.Series([1.0, 2.0, np.nan], index=["p", "q", "r"], name="measure")
ser.attrs["unit"] = "kg"
df_ts = pd.DataFrame({"v": np.arange(10, dtype=np.int64) ** 2},
                     index=pd.date_range("2024-01-01", periods=10, freq="D", name="day"))
big_df = pd.DataFrame({"x": np.arange(100_000, dtype=np.float64),
                       "y": np.arange(100_000, dtype=np.int64) % 7,
                       "z": np.arange(100_000) % 2 == 0})
"""

PANDAS_LOAD = expected_from(PANDAS_BUILD) + """
import pandas as _pd

_STRICT = dict(check_exact=True, check_dtype=True, check_index_type=True, check_names=True,
               check_freq=True, check_flags=True, check_categorical=True)

for _name, _exp in _hib_exp.items():
    if isinstance(_exp, _pd.DataFrame):
        def _frame(exp=_exp, name=_name):
            got = _hib_main[name]
            assert type(got) is _pd.DataFrame, type(got)
            _pd.testing.assert_frame_equal(got, exp, check_column_type=True, **_STRICT)
            assert got.dtypes.to_dict() == exp.dtypes.to_dict()
            assert got.attrs == exp.attrs, (got.attrs, exp.attrs)
        _hib_run("frame_" + _name, _frame)
    elif isinstance(_exp, _pd.Series):
        def _series(exp=_exp, name=_name):
            got = _hib_main[name]
            assert type(got) is _pd.Series, type(got)
            _pd.testing.assert_series_equal(got, exp, **_STRICT)
            assert got.attrs == exp.attrs, (got.attrs, exp.attrs)
        _hib_run("series_" + _name, _series)
    elif isinstance(_exp, _pd.MultiIndex):
        def _index(exp=_exp, name=_name):
            _pd.testing.assert_index_equal(_hib_main[name], exp, exact=True, check_names=True,
                                           check_exact=True)
        _hib_run("index_" + _name, _index)

@_hib_check
def check_explicit_dtypes():
    assert df_basic["o"].dtype == object
    assert df_basic["i32"].dtype == "int32" and df_basic["b"].dtype == bool
    assert df_basic.index.name == "key"
    assert df_nullable["I"].dtype == _pd.Int64Dtype()
    assert df_nullable["I"].isna().tolist() == [False, True, False]
    assert df_nullable["B"].dtype == _pd.BooleanDtype() and df_nullable["B"][1] is _pd.NA
    import pyarrow as pa
    assert df_arrow["a"].dtype == _pd.ArrowDtype(pa.string())
    assert df_arrow["sp"].dtype == _pd.StringDtype("pyarrow")
    assert df_arrow["sp"].dtype.na_value is _pd.NA
    assert df_arrow["a"].isna().tolist() == [False, True, False]

@_hib_check
def check_categorical():
    c = df_cat["level"].cat
    assert c.ordered and c.categories.tolist() == ["low", "mid", "high"]
    assert c.codes.tolist() == [0, 2, 1, 0, -1]
    assert (df_cat["level"] < "high").tolist() == [True, False, True, True, False]

@_hib_check
def check_tz_aware():
    assert str(ser_tz.dt.tz) == "America/New_York" and ser_tz.name == "when"
    assert ser_tz.dt.tz_convert("UTC").diff().dropna().unique().tolist() == [_pd.Timedelta("1h")]
    assert df_tz["utc"].dtype == _hib_exp["df_tz"]["utc"].dtype
    assert str(df_tz["utc"].dt.tz) == "UTC" and str(df_tz["ny"].dt.tz) == "America/New_York"

@_hib_check
def check_multiindex():
    assert df_multi.index.names == ["letter", "num"]
    assert df_multi.columns.names == ["outer", "inner"]
    assert df_multi.loc[("b", 2), ("x", "two")] == 13.0
    assert df_multi["x"].shape == (6, 2)

@_hib_check
def check_series_name_and_attrs():
    assert ser.name == "measure" and ser.attrs == {"unit": "kg"}

@_hib_check
def check_datetime_index():
    assert isinstance(df_ts.index, _pd.DatetimeIndex) and df_ts.index.freqstr == "D"
    assert df_ts.index.name == "day"
    assert df_ts.loc["2024-01-05", "v"] == 16

@_hib_check
def check_frames_are_usable():
    big_df.loc[0, "x"] = -1.0
    assert big_df["x"].iloc[0] == -1.0
    assert big_df["y"].sum() == _hib_exp["big_df"]["y"].sum()
"""


def test_pandas_frames_and_series(fresh) -> None:
    verdict = roundtrip(fresh, PANDAS_BUILD, PANDAS_LOAD)
    checks = verdict["checks"]
    assert sum(k.startswith("frame_") for k in checks) == 8, sorted(checks)
    assert sum(k.startswith("series_") for k in checks) == 2, sorted(checks)
    assert sum(k.startswith("index_") for k in checks) == 2, sorted(checks)
    assert_checks_ok(verdict, at_least=19)


# ---- functions defined in __main__ -----------------------------------------------------

FUNCTIONS_SAVE = """
import functools

SCALE = 10
counter = 0

def with_defaults(a, b=2, *args, c=3, d: int = 4, **kw) -> int:
    \"\"\"Add things up.\"\"\"
    return a + b + c + d + sum(args) + sum(kw.values())

with_defaults.custom_attr = {"tag": 1}

square = lambda x: x * x

def make_adder(n):
    def add(x):
        return x + n
    return add

add5 = make_adder(5)

def make_counter():
    count = 0
    def inc():
        nonlocal count
        count += 1
        return count
    def get():
        return count
    return inc, get

inc, get = make_counter()
inc()
inc()

def fact(n):
    return 1 if n <= 1 else n * fact(n - 1)

def helper(x):
    return x + 1

def caller(x):
    return helper(x) * SCALE

def bump():
    global counter
    counter += 1
    return counter

bump()

def logged(fn):
    @functools.wraps(fn)
    def wrapper(*a, **k):
        wrapper.calls += 1
        return fn(*a, **k)
    wrapper.calls = 0
    return wrapper

@logged
def greet(name: str) -> str:
    \"\"\"Say hello.\"\"\"
    return f"hello {name}"

greet("x")

def countdown(n):
    \"\"\"A generator function.\"\"\"
    while n > 0:
        yield n
        n -= 1

def evens(limit):
    yield from (i for i in range(limit) if i % 2 == 0)

handlers = {"sq": square, "add": add5}
"""

FUNCTIONS_LOAD = """
import inspect as _inspect
import types as _types

@_hib_check
def check_all_functions_bound_to_main():
    for f in (with_defaults, square, make_adder, add5, make_counter, inc, get, fact, helper,
              caller, bump, logged, greet, greet.__wrapped__, countdown, evens):
        assert type(f) is _types.FunctionType, f
        assert f.__globals__ is _hib_main, f.__qualname__
        assert f.__module__ == "__main__", (f.__qualname__, f.__module__)

@_hib_check
def check_defaults_kwdefaults_annotations_doc():
    f = with_defaults
    assert f.__name__ == "with_defaults" and f.__qualname__ == "with_defaults"
    assert f.__doc__ == "Add things up."
    assert f.__defaults__ == (2,)
    assert f.__kwdefaults__ == {"c": 3, "d": 4}
    assert f.__annotations__ == {"d": int, "return": int}
    assert f.custom_attr == {"tag": 1}
    assert str(_inspect.signature(f)) == "(a, b=2, *args, c=3, d: int = 4, **kw) -> int"
    assert f(1) == 10 and f(1, 2, 3, c=0, d=0, e=5) == 11

@_hib_check
def check_lambda():
    assert square(7) == 49 and square.__name__ == "<lambda>"
    assert handlers["sq"] is square and handlers["add"] is add5

@_hib_check
def check_closure():
    assert add5(1) == 6 and add5.__closure__[0].cell_contents == 5
    assert make_adder(2)(2) == 4

@_hib_check
def check_closures_share_a_cell():
    assert inc.__closure__[0] is get.__closure__[0]
    assert get() == 2
    assert inc() == 3
    assert get() == 3

@_hib_check
def check_recursive():
    assert fact(10) == 3628800

@_hib_check
def check_global_lookup_in_target_namespace():
    helper_saved = helper
    assert caller(1) == 20
    _hib_main["SCALE"] = 3
    _hib_main["helper"] = lambda x: x + 100
    try:
        assert caller(1) == 303
    finally:
        _hib_main["SCALE"] = 10
        _hib_main["helper"] = helper_saved

@_hib_check
def check_global_statement():
    assert counter == 1
    assert bump() == 2
    assert _hib_main["counter"] == 2

@_hib_check
def check_decorated_with_wraps():
    assert greet.__name__ == "greet" and greet.__doc__ == "Say hello."
    assert greet.calls == 1
    assert greet("bob") == "hello bob"
    assert greet.calls == 2
    assert greet.__wrapped__("z") == "hello z"
    assert str(_inspect.signature(greet)) == "(name: str) -> str"
    assert logged(lambda: 5)() == 5

@_hib_check
def check_generator_function():
    assert _inspect.isgeneratorfunction(countdown)
    assert countdown.__doc__ == "A generator function."
    g = countdown(3)
    assert _inspect.isgenerator(g) and list(g) == [3, 2, 1]
    assert list(evens(7)) == [0, 2, 4, 6]
"""


def test_functions_defined_in_main(fresh) -> None:
    verdict = roundtrip(fresh, FUNCTIONS_SAVE, FUNCTIONS_LOAD)
    assert_checks_ok(verdict, at_least=10)


# ---- classes, instances and dataclasses defined in __main__ ------------------------------

CLASSES_SAVE = """
import dataclasses
from dataclasses import dataclass, field

class Animal:
    \"\"\"Something alive.\"\"\"
    kingdom = "animalia"
    registry = []

    def __init__(self, name, legs=4):
        self.name = name
        self.legs = legs

    def describe(self):
        return f"{self.name} has {self.legs} legs"

    @classmethod
    def make(cls, name):
        return cls(name)

    @staticmethod
    def noise():
        return "..."

    @property
    def shout(self):
        return self.name.upper()

    def __eq__(self, other):
        return type(other) is type(self) and vars(other) == vars(self)

    __hash__ = None


class Dog(Animal):
    def __init__(self, name, tricks=()):
        super().__init__(name, legs=4)
        self.tricks = list(tricks)

    def describe(self):
        return super().describe() + f" and knows {len(self.tricks)} tricks"

    @staticmethod
    def noise():
        return "woof"


class Vec:
    __slots__ = ("x", "y")

    def __init__(self, x, y):
        self.x, self.y = x, y

    def norm2(self):
        return self.x ** 2 + self.y ** 2


Animal.registry.append("first")
rex = Dog("rex", ["sit", "roll"])
spider = Animal("spider", legs=8)
v = Vec(3, 4)
pets = [rex, Dog("fido")]


@dataclass
class Item:
    name: str
    qty: int = 1
    tags: list = field(default_factory=list)

    def total(self, price):
        return self.qty * price


@dataclass(frozen=True)
class Frozen:
    x: int
    y: float = 0.5
    label: str = field(default="pt", compare=False)


item = Item("apple", 3, ["fruit"])
fz = Frozen(1, 2.5)
frozen_bag = {Frozen(1), Frozen(2)}
"""

CLASSES_LOAD = """
import dataclasses as _dc

@_hib_check
def check_classes_are_from_main():
    for cls in (Animal, Dog, Vec, Item, Frozen):
        assert isinstance(cls, type) and cls.__module__ == "__main__", cls
    assert Animal.__doc__ == "Something alive."
    assert Dog.describe.__globals__ is _hib_main
    assert Item.total.__globals__ is _hib_main

@_hib_check
def check_inheritance_and_super():
    assert Dog.__mro__[1] is Animal and issubclass(Dog, Animal)
    assert rex.describe() == "rex has 4 legs and knows 2 tricks"
    d = Dog("new", ["a"])
    assert d.describe() == "new has 4 legs and knows 1 tricks"

@_hib_check
def check_instances():
    assert type(rex) is Dog and type(spider) is Animal
    assert vars(rex) == {"name": "rex", "legs": 4, "tricks": ["sit", "roll"]}
    assert spider.describe() == "spider has 8 legs"
    assert rex == Dog("rex", ["sit", "roll"])
    assert pets[0] is rex and type(pets[1]) is Dog and pets[1].name == "fido"

@_hib_check
def check_class_attributes():
    assert Animal.kingdom == "animalia" and rex.kingdom == "animalia"
    assert Animal.registry == ["first"] and Dog.registry is Animal.registry

@_hib_check
def check_classmethod_staticmethod_property():
    assert type(Animal.__dict__["make"]) is classmethod
    assert type(Dog.__dict__["noise"]) is staticmethod
    assert isinstance(Animal.__dict__["shout"], property)
    made = Dog.make("m")
    assert type(made) is Dog and made.tricks == []
    assert Dog.noise() == "woof" and Animal.noise() == "..." and rex.noise() == "woof"
    assert rex.shout == "REX"

@_hib_check
def check_slots_values():
    assert Vec.__slots__ == ("x", "y") and type(v) is Vec
    assert (v.x, v.y) == (3, 4) and v.norm2() == 25
    assert Vec(1, 2).norm2() == 5

@_hib_check
def check_dataclass():
    assert _dc.is_dataclass(Item) and type(item) is Item
    fs = _dc.fields(Item)
    assert [f.name for f in fs] == ["name", "qty", "tags"]
    assert fs[1].default == 1 and fs[2].default_factory is list
    assert item == Item("apple", 3, ["fruit"])
    assert repr(item) == "Item(name='apple', qty=3, tags=['fruit'])"
    assert item.total(2) == 6
    a, b = Item("pear"), Item("plum")
    assert a.tags == [] and a.tags is not b.tags and a.qty == 1
    assert _dc.asdict(item) == {"name": "apple", "qty": 3, "tags": ["fruit"]}
    assert _dc.replace(item, qty=5) == Item("apple", 5, ["fruit"])

@_hib_check
def check_frozen_dataclass():
    assert type(fz) is Frozen and Frozen.__dataclass_params__.frozen
    assert [f.name for f in _dc.fields(Frozen)] == ["x", "y", "label"]
    assert fz == Frozen(1, 2.5, "other")
    assert repr(fz) == "Frozen(x=1, y=2.5, label='pt')"
    assert hash(fz) == hash(Frozen(1, 2.5))
    assert Frozen(1) in frozen_bag and all(type(f) is Frozen for f in frozen_bag)
    try:
        fz.x = 2
    except _dc.FrozenInstanceError:
        pass
    else:
        raise AssertionError("assigning to a frozen dataclass did not raise")
"""


def test_classes_and_dataclasses_defined_in_main(fresh) -> None:
    verdict = roundtrip(fresh, CLASSES_SAVE, CLASSES_LOAD)
    assert_checks_ok(verdict, at_least=8)


SLOTS_SAVE = """
class Vec:
    __slots__ = ("x", "y")

    def __init__(self, x, y):
        self.x, self.y = x, y

class Base:
    __slots__ = ()

class Child(Base):
    __slots__ = ("a",)

v = Vec(3, 4)
c = Child()
c.a = 1
"""

SLOTS_LOAD = """
import types as _types

@_hib_check
def check_slot_descriptors():
    assert isinstance(Vec.__dict__.get("x"), _types.MemberDescriptorType), Vec.__dict__.keys()
    assert isinstance(Child.__dict__.get("a"), _types.MemberDescriptorType)

@_hib_check
def check_instances_have_no_dict():
    for obj in (v, Vec(1, 2), c):
        assert not hasattr(obj, "__dict__"), f"{type(obj).__name__} instance has a __dict__"
    assert (v.x, v.y, c.a) == (3, 4, 1)

@_hib_check
def check_new_attributes_rejected():
    try:
        v.z = 1
    except AttributeError:
        pass
    else:
        raise AssertionError("a __slots__ instance accepted a new attribute")
"""


def test_slots_class_keeps_its_slots(fresh) -> None:
    verdict = roundtrip(fresh, SLOTS_SAVE, SLOTS_LOAD)
    assert_checks_ok(verdict, at_least=3)


DATACLASS_SENTINEL_SAVE = """
import dataclasses

@dataclasses.dataclass
class Pair:
    a: int
    b: int
"""

DATACLASS_SENTINEL_LOAD = """
import dataclasses as _dc

@_hib_check
def check_missing_sentinel_identity():
    f = _dc.fields(Pair)[0]
    assert f.default is _dc.MISSING and f.default_factory is _dc.MISSING

@_hib_check
def check_subclass_restored_dataclass():
    @_dc.dataclass
    class Triple(Pair):
        c: int
    assert Triple(1, 2, 3) == Triple(a=1, b=2, c=3)
"""


def test_restored_dataclass_can_be_subclassed(fresh) -> None:
    verdict = roundtrip(fresh, DATACLASS_SENTINEL_SAVE, DATACLASS_SENTINEL_LOAD)
    assert_checks_ok(verdict, at_least=2)


# ---- modules and from-imports ------------------------------------------------------------

IMPORTS_SAVE = """
import os
import os.path as osp
import numpy as np
import collections.abc as cabc
from collections import Counter, OrderedDict as OD
from os.path import join
from functools import reduce
from json import dumps as to_json
"""

IMPORTS_LOAD = """
@_hib_check
def check_modules_are_the_same_objects():
    import sys, os as os_, numpy, collections.abc
    assert np is sys.modules["numpy"] and np is numpy
    assert osp is sys.modules["os.path"] and osp is os_.path
    assert os is os_
    assert cabc is collections.abc

@_hib_check
def check_from_imports_are_the_same_objects():
    import collections, functools, json, os.path
    assert Counter is collections.Counter
    assert OD is collections.OrderedDict
    assert join is os.path.join
    assert reduce is functools.reduce
    assert to_json is json.dumps
    assert join("a", "b") == "a/b" and Counter("aab")["a"] == 2
"""


def test_modules_and_imports(fresh) -> None:
    verdict = roundtrip(fresh, IMPORTS_SAVE, IMPORTS_LOAD)
    assert_checks_ok(verdict, at_least=2)
    m = hibernate.inspect(fresh.path / "s.hib")
    got = {e.name: (e.kind, e.module, e.qualname) for e in m.entries
           if not e.name.startswith("_")}
    import functools
    import os.path
    assert got == {
        "os": ("module", "os", None),
        "osp": ("module", os.path.__name__, None),
        "np": ("module", "numpy", None),
        "cabc": ("module", "collections.abc", None),
        "Counter": ("import", "collections", "Counter"),
        "OD": ("import", "collections", "OrderedDict"),
        "join": ("import", os.path.join.__module__, "join"),
        "reduce": ("import", functools.reduce.__module__, "reduce"),
        "to_json": ("import", "json", "dumps"),
    }
    assert not any(g for g in m.groups if set(g.names) & set(got)), "references need no data"


# ---- property-based: nested builtin data -------------------------------------------------

_leaves = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
           | st.text() | st.binary())
_keys = st.text(max_size=8) | st.integers() | st.binary(max_size=8)
nested = st.recursive(
    _leaves,
    lambda children: (st.lists(children, max_size=5)
                      | st.dictionaries(_keys, children, max_size=5)
                      | st.lists(children, max_size=4).map(tuple)),
    max_leaves=25,
)


def _same(a: Any, b: Any) -> bool:
    """Equal, with the same types all the way down (and the sign of zero)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return bool(a == b and math.copysign(1.0, a) == math.copysign(1.0, b))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return len(a) == len(b) and all(_same(ka, kb) and _same(va, vb) for (ka, va), (kb, vb)
                                        in zip(a.items(), b.items()))
    return bool(a == b)


@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=nested)
def test_nested_builtin_data_property(tmp_path_factory: pytest.TempPathFactory,
                                      data: Any) -> None:
    path = tmp_path_factory.mktemp("prop") / "s.hib"
    ns = {"value": data, "pair": [data, data], "__name__": "not_main"}
    saved = hibernate.save(path, ns)
    assert {n: s.code for n, s in saved.skipped.items() if s.code != "dunder"} == {}
    out: dict[str, Any] = {}
    report = hibernate.load(path, out)
    assert report.failed == {}
    assert set(out) == {"value", "pair"}
    assert _same(out["value"], data)
    assert _same(out["pair"], [data, data])
    if isinstance(data, (list, dict)):
        assert out["pair"][0] is out["pair"][1] is out["value"]
