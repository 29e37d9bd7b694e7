"""Re-signing (trust issue, item 1): ``hibernate checkout STORE --output F`` and
``export_checkpoint`` wrote a checkpoint made by someone else into a file signed with the
user's own key, and a later plain ``load(F)`` ran its pickled payload. A copy keeps the
signature it came with (one trust decision for files, checkpoints and exports): the canary
must not appear."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import hibernate

STRANGER = "5354524e47522d0f1e2d3c4b5a69780f1e2d3c4b5a6978"  # a valid key: someone else


def test_checkout_output_of_someone_elses_checkpoint_stays_untrusted(tmp_path: Path) -> None:
    """The attack: a store written by someone else, checked out to a file by the user, then
    loaded plainly. The file must carry the stranger's signature, not the user's."""
    store = tmp_path / "store"
    canary = tmp_path / "canary"
    code = f"""
import os, hibernate
class Evil:
    def __reduce__(self):
        return (os.system, ("touch {canary}",))
hibernate.checkpoint({str(store)!r}, {{"evil": Evil(), "ok": [1, 2]}})
"""
    subprocess.run([sys.executable, "-c", code], check=True,
                   env={**os.environ, "HIBERNATE_KEY": STRANGER})
    out = tmp_path / "out.hib"
    subprocess.run([sys.executable, "-m", "hibernate", "checkout", str(store), "--output",
                    str(out)], check=True, capture_output=True)
    assert hibernate.inspect(out).signature == "foreign"
    with pytest.raises(hibernate.UntrustedFileError):
        hibernate.load(out, {})
    data: dict = {}
    hibernate.load(out, data, data_only=True)             # plain data only
    assert data == {"ok": [1, 2]} and not canary.exists()
    with pytest.raises(hibernate.UntrustedFileError):     # and the store itself
        hibernate.checkout(store, None, {})
    assert not canary.exists()


def test_importing_an_untrusted_file_does_not_make_it_trusted(tmp_path: Path) -> None:
    path = tmp_path / "f.hib"
    subprocess.run([sys.executable, "-c", f"import hibernate; hibernate.save({str(path)!r}, "
                    "{'x': {1: 2}})"], check=True, env={**os.environ, "HIBERNATE_KEY": STRANGER})
    c = hibernate.import_checkpoint(path, tmp_path / "store")
    with pytest.raises(hibernate.UntrustedFileError):
        hibernate.checkout(tmp_path / "store", c.id, {})
    out: dict = {}
    hibernate.checkout(tmp_path / "store", c.id, out, data_only=True)
    assert out == {"x": {1: 2}}                             # plain data: the restricted path
