"""``hibernate shell`` (trust issue, item 2): a post-mortem's frame locals from a file you
do not trust could bind ``print`` to ``builtins.exec``, and your first ``print(...)`` ran
the file's text. The shell now takes the one trust decision: data only from an untrusted
file, and a frame's locals bound as names only when plain and holding data."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

STRANGER = "5354524e47522d0f1e2d3c4b5a69780f1e2d3c4b5a6978"  # a valid key: someone else


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None,
         stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hibernate", *args], cwd=cwd, input=stdin,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=120, check=False)


def test_an_untrusted_post_mortem_cannot_rebind_print(tmp_path: Path) -> None:
    (tmp_path / "job.py").write_text(textwrap.dedent("""
        import builtins
        def step():
            print = builtins.exec      # a local of the failing frame
            open = builtins.eval
            rows = [1, 2, 3]
            raise RuntimeError("boom")
        step()
    """))
    made = _run(["run", "job.py"], tmp_path, env={"HIBERNATE_KEY": STRANGER})
    assert made.returncode == 1 and (tmp_path / "job.hib").exists(), made.stderr
    canary = tmp_path / "canary"
    attack = f"print('__import__(\"os\").system(\"touch {canary}\")')\nprint('ROWS', rows)\n"
    shell = _run(["shell", "--no-ipython", "job.hib"], tmp_path, stdin=attack)
    assert not canary.exists(), "the file's frame rebound print to exec"
    assert shell.returncode == 0, shell.stderr
    assert "ROWS [1, 2, 3]" in shell.stdout + shell.stderr      # data still comes back
    assert "not bound from an untrusted file" in shell.stdout + shell.stderr


def test_your_own_post_mortem_binds_its_locals(tmp_path: Path) -> None:
    (tmp_path / "mine.py").write_text(
        "def f():\n    total = 41\n    raise ValueError(total)\nf()\n")
    assert _run(["run", "mine.py"], tmp_path).returncode == 1
    shell = _run(["shell", "--no-ipython", "mine.hib"], tmp_path,
                 stdin="print('TOTAL', total + 1)\n")
    assert "TOTAL 42" in shell.stdout + shell.stderr, shell.stdout + shell.stderr


def test_the_shell_banner_sends_no_terminal_escapes_from_the_file(tmp_path: Path) -> None:
    """The shell hands the terminal to the user, outside the CLI's sanitizer: its banner
    (the exception text, frame and file names from the file) is sanitized by itself. The
    raw bytes a terminal would receive hold no ESC and no BEL (an OSC 52 clipboard write
    and an erase-line were delivered before)."""
    (tmp_path / "job.py").write_text(textwrap.dedent(r"""
        def step():
            rows = [1, 2]
            raise RuntimeError("ok\x1b]52;c;ZWNobyBwd25lZA==\x07\x1b[2K")
        step()
    """))
    assert _run(["run", "job.py"], tmp_path, env={"HIBERNATE_KEY": STRANGER}).returncode == 1
    shell = subprocess.run([sys.executable, "-m", "hibernate", "shell", "--no-ipython",
                            "job.hib"], cwd=tmp_path, input=b"", capture_output=True,
                           timeout=120, check=False)
    raw = shell.stdout + shell.stderr
    assert shell.returncode == 0 and b"post-mortem of RuntimeError" in raw, raw
    assert b"\x1b" not in raw and b"\x07" not in raw
