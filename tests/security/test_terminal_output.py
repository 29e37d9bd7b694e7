"""Terminal escapes from a file never reach the terminal (trust issue, item 11): every CLI
command's output goes through one sanitizer. Checked on the raw bytes a terminal would
receive from `hibernate log` and `hibernate verify`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

import hibernate

ERASE = "\x1b[2K"
CLIPBOARD = "\x1b]52;c;ZWNobyBwd25lZA==\x07"


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "hibernate", *args], cwd=cwd,
                          capture_output=True)


def test_log_shows_no_escape_from_a_record(tmp_path: Path) -> None:
    store = tmp_path / "store"
    hibernate.checkpoint(store, {"x": 1}, message=f"hi{CLIPBOARD}{ERASE}")
    cid = hibernate.log(store)[0].id
    path = store / "checkpoints" / f"{cid}.ckpt"
    raw = path.read_bytes()
    body = json.loads(raw[56:])
    body["checkpoint"]["time"] = f"2026{ERASE}{CLIPBOARD}"
    path.write_bytes(b"HIBCKPT2" + bytes(48) + json.dumps(body).encode())  # now unsigned
    out = _cli("log", str(store), "--all", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    shown = out.stdout + out.stderr
    assert b"\x1b" not in shown and b"\x07" not in shown, shown
    assert b"hi?]52;c;" in shown  # the text is there, defused


def test_verify_shows_no_escape_from_a_group_name(tmp_path: Path) -> None:
    path = tmp_path / "s.hib"
    hibernate.save(path, {f"bad{ERASE}{CLIPBOARD}": np.arange(100_000)})
    m = hibernate.inspect(path)
    c = m.blobs[0].chunks[0]
    data = bytearray(path.read_bytes())
    data[c.offset + 10] ^= 0xFF
    path.write_bytes(bytes(data))
    out = _cli("verify", str(path), cwd=tmp_path)
    assert out.returncode == 1 and b"damaged" in out.stdout, out
    assert b"\x1b" not in out.stdout + out.stderr and b"\x07" not in out.stdout + out.stderr
    ins = _cli("inspect", str(path), cwd=tmp_path)
    assert b"\x1b" not in ins.stdout + ins.stderr
