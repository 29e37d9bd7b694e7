"""`hibernate run`, `save_on_exit` and `hibernate shell`, as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import hibernate

CLI = [sys.executable, "-m", "hibernate"]


def sh(args: list[str], cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, input=stdin, capture_output=True, text=True,
                          timeout=120, check=False)


def script(tmp_path: Path, name: str, body: str) -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(body))
    return p


def test_run_saves_the_globals_of_a_script_that_ends_normally(tmp_path: Path) -> None:
    script(tmp_path, "ok.py", """
        import sys
        argv = sys.argv[1:]
        total = sum(range(10))
        def double(x):
            return 2 * x
        print("done", flush=True)
    """)
    proc = sh([*CLI, "run", "ok.py", "--flag", "v"], tmp_path)
    assert proc.returncode == 0 and "done" in proc.stdout
    assert "saved session to ok.hib" in proc.stderr
    ns: dict = {}
    hibernate.load(tmp_path / "ok.hib", ns)
    assert ns["argv"] == ["--flag", "v"] and ns["total"] == 45 and ns["double"](4) == 8
    assert "postmortem" not in hibernate.inspect(tmp_path / "ok.hib").session


@pytest.mark.parametrize("encoding", ["latin-1", "big5"])
def test_run_reads_a_script_in_its_declared_encoding(tmp_path: Path, encoding: str) -> None:
    """A PEP 263 script that is not UTF-8 runs and saves as Python runs it (found on
    joblib's test suite: latin-1 failed before running, big5 saved nothing)."""
    text = "café" if encoding == "latin-1" else "中文"
    source = (f"# -*- coding: {encoding} -*-\n"
              f'def greet():\n    """{text}"""\n    return "{text}"\n'
              "word = greet()\ngen = (c for c in word)\nfirst = next(gen)\n")
    (tmp_path / "enc.py").write_bytes(source.encode(encoding))
    proc = sh([*CLI, "run", "enc.py"], tmp_path)
    assert proc.returncode == 0 and "saved session to enc.hib" in proc.stderr, proc.stderr
    ns: dict = {}
    r = hibernate.load(tmp_path / "enc.hib", ns, replay=True)
    assert ns["word"] == text and ns["greet"]() == text and r.failed == {}
    assert next(ns["gen"]) == text[1]  # replayed from the recorded (decoded) statements


def test_run_preserves_sys_exit_status_and_saves(tmp_path: Path) -> None:
    script(tmp_path, "bye.py", "import sys\nstate = 'half'\nsys.exit(3)\n")
    proc = sh([*CLI, "run", "--save", "out.hib", "bye.py"], tmp_path)
    assert proc.returncode == 3
    ns: dict = {}
    hibernate.load(tmp_path / "out.hib", ns)
    assert ns["state"] == "half"


CRASH = """
    rows = [1, 2, 3]
    def compute(values, divisor):
        partial = sum(values)
        return partial / divisor
    def main():
        scale = 0
        return compute(rows, scale)
    main()
"""


def test_run_on_a_crash_saves_a_post_mortem_and_fails(tmp_path: Path) -> None:
    script(tmp_path, "crash.py", CRASH)
    proc = sh([*CLI, "run", "crash.py"], tmp_path)
    assert proc.returncode == 1
    assert "ZeroDivisionError" in proc.stderr and "post-mortem" in proc.stderr
    assert "run_script" not in proc.stderr  # the traceback is the script's, not hibernate's
    m = hibernate.inspect(tmp_path / "crash.hib")
    pm = m.session["postmortem"]
    assert pm["exception"] == "ZeroDivisionError: division by zero"
    assert [f["function"] for f in pm["frames"]] == ["<module>", "main", "compute"]
    assert pm["frames"][2]["locals"] == ["values", "divisor", "partial"]
    text = str(m)
    assert "post-mortem of ZeroDivisionError" in text and "frame2 compute" in text
    # frame locals are never bound by a plain load; their identity with globals is kept
    ns: dict = {}
    r = hibernate.load(tmp_path / "crash.hib", ns)
    assert "frame2.values" not in ns and r.skipped["frame2.values"].code == "unsafe-name"
    both: dict = {}
    hibernate.load(tmp_path / "crash.hib", both, include=["rows", "frame2.values"])
    assert both["frame2.values"] is both["rows"]


def test_run_on_error_only(tmp_path: Path) -> None:
    script(tmp_path, "ok.py", "x = 1\n")
    script(tmp_path, "crash.py", CRASH)
    assert sh([*CLI, "run", "--on-error-only", "ok.py"], tmp_path).returncode == 0
    assert not (tmp_path / "ok.hib").exists()
    assert sh([*CLI, "run", "--on-error-only", "crash.py"], tmp_path).returncode == 1
    assert (tmp_path / "crash.hib").exists()


@pytest.mark.parametrize("crash", [False, True])
def test_save_on_exit_from_a_script(tmp_path: Path, crash: bool) -> None:
    script(tmp_path, "job.py", f"""
        import hibernate
        hibernate.save_on_exit("job.hib")
        results = {{"n": 7}}
        def fail(level):
            inner = level * 2
            raise RuntimeError("boom")
        if {crash}:
            fail(5)
    """)
    proc = sh([sys.executable, "job.py"], tmp_path)
    assert proc.returncode == (1 if crash else 0)
    assert ("RuntimeError: boom" in proc.stderr) is crash  # the program's own error shows
    ns: dict = {}
    hibernate.load(tmp_path / "job.hib", ns)
    assert ns["results"] == {"n": 7}
    m = hibernate.inspect(tmp_path / "job.hib")
    if crash:
        frames = m.session["postmortem"]["frames"]
        assert frames[-1]["function"] == "fail" and frames[-1]["locals"] == ["level", "inner"]
    else:
        assert "postmortem" not in m.session


@pytest.mark.parametrize("flag", [[], ["--no-ipython"]])
def test_shell_reads_commands_from_stdin(tmp_path: Path, flag: list[str]) -> None:
    script(tmp_path, "crash.py", CRASH)
    sh([*CLI, "run", "crash.py"], tmp_path)
    code = ("print('RESULT', json.dumps([divisor, values, values is rows, "
            "postmortem.frames[1].locals]))\n")
    proc = sh([*CLI, "shell", *flag, "crash.hib"], tmp_path, stdin="import json\n" + code)
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if "RESULT" in x)
    assert json.loads(line.split("RESULT", 1)[1]) == [0, [1, 2, 3], True, {"scale": 0}]
    assert "post-mortem of ZeroDivisionError" in proc.stdout + proc.stderr


def test_replay_of_a_script_keeps_its_decorators(tmp_path: Path) -> None:
    """A decorated function's statement starts at its first decorator: replayed without
    it, a value made from the function was silently another (found on dill's tests)."""
    script(tmp_path, "deco.py", """
        import functools, hashlib
        def shout(fn):
            @functools.wraps(fn)
            def wrapper(*a):
                return fn(*a).upper()
            return wrapper

        @shout
        def greet(name):
            return "hello " + name
        x = 1; y = x + 1
        h = hashlib.sha256(greet("bob").encode())
    """)
    # a form feed (a page break in old sources) inside a line does not start a new one for
    # ast: the recorded statement must still be the decorated def, and nothing else
    source = (tmp_path / "deco.py").read_text()
    (tmp_path / "deco.py").write_text(source.replace("import functools, hashlib",
                                                     "import functools, hashlib  # \f page"))
    assert sh([*CLI, "run", "deco.py"], tmp_path).returncode == 0
    cells = hibernate.inspect(tmp_path / "deco.hib").sections["cells"]["cells"]
    assert any(c["code"].startswith("@shout\ndef greet") for c in cells), cells
    ns: dict = {}
    r = hibernate.load(tmp_path / "deco.hib", ns, replay=True)
    assert ns["h"].hexdigest() == __import__("hashlib").sha256(b"HELLO BOB").hexdigest()
    assert "__builtins__" not in r.restored  # the replay binds no dunder
