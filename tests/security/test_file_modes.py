"""File modes (trust issue, item 12): new files and store objects follow the umask (a
save used to reset a 0600 file to 0644, and a shared machine's umask 027 must not leave
world-readable sessions); the key and the trust list are 0600 whatever the umask."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

STRANGER_KEY = "5354524e47522d0f1e2d3c4b5a69780f1e2d3c4b5a6978"  # a valid key: someone else


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_files_and_store_objects_follow_the_umask_and_secrets_stay_0600(
        tmp_path: Path) -> None:
    config = tmp_path / "config"
    stranger = tmp_path / "stranger.hib"
    subprocess.run([sys.executable, "-c", f"import hibernate; hibernate.save({str(stranger)!r}"
                    ", {'x': 1})"], check=True, env={**os.environ, "HIBERNATE_KEY": STRANGER_KEY})
    code = """
import os
os.umask(0o027)
import hibernate
hibernate.save("new.hib", {"x": list(range(10))})   # the user's key is made here
hibernate.checkpoint("store", {"x": list(range(10))})
"""
    env = {k: v for k, v in os.environ.items() if k != "HIBERNATE_KEY"}
    env["HIBERNATE_CONFIG_DIR"] = str(config)
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, check=True)
    subprocess.run(["sh", "-c", f"umask 000 && {sys.executable} -m hibernate trust --yes "
                    f"{stranger}"], cwd=tmp_path, env=env, check=True, capture_output=True)
    assert _mode(tmp_path / "new.hib") == 0o640
    objects = [p for p in (tmp_path / "store").rglob("*") if p.is_file()]
    assert objects and {_mode(p) for p in objects} == {0o640}, {
        str(p.relative_to(tmp_path)): oct(_mode(p)) for p in objects}
    secrets = [p for p in config.rglob("*") if p.is_file()]
    assert len(secrets) >= 2  # the key and the trust list
    assert {_mode(p) for p in secrets} == {0o600}, {p.name: oct(_mode(p)) for p in secrets}
