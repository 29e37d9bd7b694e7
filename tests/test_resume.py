"""Resume (whole-session issue, item 7) in real kernels: autosave into the notebook's own
store with a retention rule, then a fresh kernel resumes by ``%hibernate resume`` or, with
the extension option set, by itself at start."""

from __future__ import annotations

from pathlib import Path

import pytest

import hibernate

pytest.importorskip("jupyter_client")
pytest.importorskip("ipykernel")

from test_jupyter import Kernel  # noqa: E402

CELLS = ["x = 1", "data = [1, 2, 3]", "def double(v):\n    return 2 * v",
         "data.append(double(x))", "label = 'after four cells'", "x = 10"]


def _notebook_env(path: Path) -> dict[str, str]:
    return {"JPY_SESSION_NAME": str(path / "analysis.ipynb")}


@pytest.fixture
def autosaved(tmp_path: Path) -> Path:
    """A kernel that ran CELLS with autosave on (keep 3) in the notebook's store."""
    k = Kernel(tmp_path, env=_notebook_env(tmp_path))
    try:
        for cell in ["%load_ext hibernate", "%hibernate autosave on --keep 3", *CELLS]:
            out = k.run(cell)
            assert out["error"] is None, (cell, out)
    finally:
        k.close()
    return tmp_path


def test_autosave_uses_the_notebooks_store_and_keeps_the_newest(autosaved: Path) -> None:
    store = autosaved / ".analysis.ipynb.hibernate"
    assert store.is_dir() and not (autosaved / ".hibernate").exists()
    line = hibernate.log(store, all=True)
    assert len(line) == 3, [c.message for c in line]  # keep 3 of the 7 checkpoints
    assert line[0].message.startswith("autosave after cell")


def test_resume_in_a_fresh_kernel_restores_the_newest_checkpoint(autosaved: Path) -> None:
    k = Kernel(autosaved, env=_notebook_env(autosaved))
    try:
        out = k.run("%load_ext hibernate\n%hibernate resume")
        assert out["error"] is None, out
        assert "hibernate resume: restored" in out["stdout"], out
        got = k.json("import json\nprint(json.dumps([x, data, double(4), label]))")
        assert got == [10, [1, 2, 3, 2], 8, "after four cells"]
    finally:
        k.close()


def test_the_profile_option_resumes_at_kernel_start(autosaved: Path) -> None:
    k = Kernel(autosaved, env=_notebook_env(autosaved),
               extra_arguments=["--InteractiveShellApp.extensions=['hibernate']",
                                "--Hibernate.resume=True"])
    try:
        got = k.json("import json\nprint(json.dumps([x, data, label]))")
        assert got == [10, [1, 2, 3, 2], "after four cells"]
    finally:
        k.close()


def test_resume_with_nothing_to_resume_says_so(tmp_path: Path) -> None:
    k = Kernel(tmp_path)
    try:
        out = k.run("%load_ext hibernate\n%hibernate resume")
        assert out["error"] is None, out
        where = tmp_path / ".hibernate"
        assert f"nothing to resume (no checkpoints in {where})" in out["stdout"], out
    finally:
        k.close()


def _run_all(k: Kernel, cells: list[str]) -> None:
    for cell in cells:
        out = k.run(cell)
        assert out["error"] is None, (cell, out)


def test_resume_brings_back_the_working_directory_and_random_states(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    k = Kernel(tmp_path)
    try:
        _run_all(k, ["%load_ext hibernate", "%hibernate autosave on",
                     "import os, random\nimport numpy as np\nos.chdir('data')",
                     "random.seed(3)\nnp.random.seed(4)\nfirst = random.random()",
                     "import json\nr, s = random.Random(), np.random.RandomState()\n"
                     "r.setstate(random.getstate())\ns.set_state(np.random.get_state())\n"
                     "expected = [r.random(), float(s.random_sample())]"])
        expected = k.json("print(json.dumps(expected))")
    finally:
        k.close()
    k = Kernel(tmp_path)  # a fresh kernel, in the notebook's folder
    try:
        out = k.run("%load_ext hibernate\n%hibernate resume")
        assert out["error"] is None and "hibernate resume: restored" in out["stdout"], out
        got = k.json("import json, os, random\nimport numpy as np\n"
                     "print(json.dumps([os.getcwd(), random.random(), "
                     "float(np.random.random_sample())]))")
        assert got == [str(tmp_path / "data"), *expected]
    finally:
        k.close()


def test_a_chdir_moves_neither_autosave_nor_resume(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    k = Kernel(tmp_path)
    try:
        _run_all(k, ["%load_ext hibernate", "%hibernate autosave on --environment none",
                     "x = 1", "import os\nos.chdir('sub')", "x = 2", "x = 3"])
    finally:
        k.close()
    assert (tmp_path / ".hibernate").is_dir() and not (tmp_path / "sub" / ".hibernate").exists()
    k = Kernel(tmp_path)
    try:
        out = k.run("%load_ext hibernate\n%hibernate resume")
        assert out["error"] is None, out
        assert k.json("print(x)") == 3
    finally:
        k.close()


def test_resume_replay_recomputes_a_generator_consumed_over_cells(tmp_path: Path) -> None:
    k = Kernel(tmp_path)
    try:
        _run_all(k, ["%load_ext hibernate", "%hibernate autosave on",
                     "def numbers():\n    n = 0\n    while True:\n        n += 1\n"
                     "        yield n", "gen = numbers()", "next(gen)", "next(gen)",
                     "seen = next(gen)"])
    finally:
        k.close()
    k = Kernel(tmp_path)
    try:
        out = k.run("%load_ext hibernate\n%hibernate resume")
        assert out["error"] is None, out
        assert k.json("import json\nprint(json.dumps([seen, type(globals().get('gen'))"
                      ".__name__]))") == [3, "Placeholder"]  # a generator cannot be stored
        out = k.run("%hibernate resume --replay")
        assert out["error"] is None, out
        assert k.json("print(json.dumps([seen, next(gen)]))") == [3, 4]
    finally:
        k.close()
