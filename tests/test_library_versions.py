"""Sessions across numpy and pandas versions (speed and portability issue, item 2).

Two environments: this one (numpy 2, pandas 3) and one the test makes (numpy 1.26, pandas
2.2, pyarrow 17; hibernate installed from a wheel of this tree). A session of frames
(numbers, object strings with gaps, categoricals, time zones, nullable integers, a
MultiIndex), a Series sharing its frame's index, a frame also held in a dict, arrays in
containers and shared by two names, and numpy random generators is saved in each and
loaded in the other, with and without ``data_only``: every value equal (string columns
take the loading pandas' own string dtype: pandas 3's ``str`` is ``string[pyarrow_numpy]``
on pandas 2.2, and pandas 2's object strings stay object), identities kept, the
generators drawing the same numbers. Before, every frame, series and generator in a group
failed (``numpy._core`` / ``pytz`` / ``StringDtype`` errors): they were pandas' and numpy's
own pickles.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

OLD = ["numpy>=1.26,<2", "pandas>=2.2,<2.3", "pyarrow>=17,<18"]

SESSION = '''
import numpy as np, pandas as pd

def build():
    rng = np.random.default_rng(7)
    idx = pd.Index([f"r{i}" for i in range(6)], name="row")
    df = pd.DataFrame({
        "f": [1.5, np.nan, 3.0, 4.25, -1.0, 0.0],
        "i": np.arange(6, dtype=np.int64),
        "s": pd.Series(["a", None, "ccc", np.nan, "é", ""], dtype=object, index=idx),
        "t": pd.Series(["x", None, "y", "z", None, "w"], dtype="string", index=idx),
        "cat": pd.Categorical(["x", "y", "x", None, "z", "y"]),
        "when": pd.date_range("2024-03-30", periods=6, freq="h", tz="Europe/Paris", unit="ns"),
        "n": pd.array([1, None, 3, 4, None, 6], dtype="Int64"),
    }, index=idx)
    mi = pd.MultiIndex.from_product([["a", "b"], [1, 2, 3]], names=["k", "j"])
    multi = pd.DataFrame({"v": np.arange(6.0), "w": list("uvwxyz")}, index=mi)
    arrays = {"a": np.arange(10, dtype=np.int32), "f": np.ones((3, 4), order="F"),
              "big": np.linspace(0, 1, 100_000), "when": np.zeros(3, dtype="M8[ns]")}
    legacy = np.random.RandomState(3)
    legacy.standard_normal(3)  # leaves a cached gaussian in its state
    ns = {"df": df, "frames": {"df": df, "multi": multi}, "multi": multi,
          "ser": pd.Series(np.arange(6) * 2.0, index=df.index, name="twice"),
          "arrays": arrays, "listed": [arrays["a"], arrays["when"]], "shared": arrays["big"],
          "gen": rng, "legacy": legacy, "child": rng.spawn(1)[0],
          "alone": pd.DataFrame({"x": [1, 2], "y": ["p", "q"]})}
    rng.random(3)  # advanced past its seed
    return ns
'''

SAVE = SESSION + '''
import sys, hibernate
hibernate.save(sys.argv[1], build())
'''

LOAD = SESSION + '''
import json, sys, hibernate

def text(dtype):
    return "text" if dtype == object or isinstance(dtype, pd.StringDtype) else str(dtype)

def check(got, want, where):
    if isinstance(want, pd.DataFrame):
        assert type(got) is pd.DataFrame, where
        pd.testing.assert_frame_equal(got, want, check_dtype=False, check_index_type=False,
                                      check_column_type=False, check_categorical=False)
        assert [text(d) for d in got.dtypes] == [text(d) for d in want.dtypes], (
            where, [str(d) for d in got.dtypes], [str(d) for d in want.dtypes])
        for c in want.select_dtypes("category"):  # categories of text, in order
            assert list(got[c].cat.categories) == list(want[c].cat.categories), where
            assert np.array_equal(got[c].cat.codes, want[c].cat.codes), where
        return
    if isinstance(want, pd.Series):
        pd.testing.assert_series_equal(got, want, check_index_type=False)
        return
    if isinstance(want, np.ndarray):
        assert type(got) is np.ndarray and got.dtype == want.dtype, where
        assert np.array_equal(got, want) and got.flags.f_contiguous == want.flags.f_contiguous
        return
    if isinstance(want, dict):
        assert got.keys() == want.keys(), where
        for k in want:
            check(got[k], want[k], f"{where}[{k!r}]")
        return
    if isinstance(want, list):
        assert len(got) == len(want), where
        for i, (a, b) in enumerate(zip(got, want)):
            check(a, b, f"{where}[{i}]")
        return
    if isinstance(want, np.random.Generator):
        assert type(got) is np.random.Generator, where
        assert np.array_equal(got.random(4), want.random(4)), where  # the same next draws
        assert np.array_equal(got.spawn(1)[0].random(2), want.spawn(1)[0].random(2)), where
        return
    if isinstance(want, np.random.RandomState):
        assert type(got) is np.random.RandomState, where
        assert np.array_equal(got.standard_normal(3), want.standard_normal(3)), where
        return
    raise AssertionError(f"{where}: unchecked {type(want)}")

out = {}
for data_only in (False, True):
    ns = {}
    report = hibernate.load(sys.argv[1], ns, data_only=data_only)
    assert not report.failed, report.failed
    want = build()
    for name in want:
        check(ns[name], want[name], name)
    assert ns["frames"]["df"] is ns["df"] and ns["frames"]["multi"] is ns["multi"]
    assert ns["shared"] is ns["arrays"]["big"] and ns["listed"][0] is ns["arrays"]["a"]
    ns["df"].loc["r0", "f"] = 9.0  # the columns are writable
    out[str(data_only)] = sorted(ns)
print(json.dumps({"numpy": np.__version__, "pandas": pd.__version__, "loaded": out}))
'''


@pytest.fixture(scope="module")
def old_env(tmp_path_factory: pytest.TempPathFactory, hibernate_wheel: Path) -> Path:
    """A venv with numpy 1.x, pandas 2.2 and this tree's hibernate: its python."""
    venv = tmp_path_factory.mktemp("old") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    python = venv / "bin" / "python"
    proc = subprocess.run([str(python), "-m", "pip", "install", "--quiet", *OLD,
                           f"{hibernate_wheel}[compression]"], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"could not make the numpy 1 / pandas 2 environment: {proc.stderr[-2000:]}")
    return python


def _run(python: Path | str, code: str, path: Path) -> dict:
    script = path.parent / f"step_{abs(hash(code)) % 10**8}.py"
    script.write_text(code)
    proc = subprocess.run([str(python), str(script), str(path)], cwd=path.parent,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = proc.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else {}


def test_numpy2_pandas3_session_loads_on_numpy1_pandas2(old_env: Path, tmp_path: Path) -> None:
    import numpy as np
    import pandas as pd

    assert int(np.__version__.split(".")[0]) >= 2 and int(pd.__version__.split(".")[0]) >= 3
    _run(sys.executable, SAVE, tmp_path / "new.hib")
    got = _run(old_env, LOAD, tmp_path / "new.hib")
    assert got["numpy"].startswith("1.") and got["pandas"].startswith("2.2"), got
    assert got["loaded"]["True"] == got["loaded"]["False"]


def test_numpy1_pandas2_session_loads_on_numpy2_pandas3(old_env: Path, tmp_path: Path) -> None:
    _run(old_env, SAVE, tmp_path / "old.hib")
    got = _run(sys.executable, LOAD, tmp_path / "old.hib")
    assert got["numpy"].startswith("2.") and got["pandas"].startswith("3."), got
