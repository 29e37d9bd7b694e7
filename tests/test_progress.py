"""The progress line: shown when asked for (or watched) and slow, never when turned off."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import hibernate
from hibernate import _progress


def test_progress_line_on_save_and_load(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(_progress, "DELAY", 0.0)
    monkeypatch.setattr(_progress, "EVERY", 0.0)
    ns = {"a": np.zeros(3_000_000)}
    hibernate.save(tmp_path / "p.hib", ns, progress=True)
    err = capsys.readouterr().err
    assert "hibernate: saving" in err and "100%" in err
    assert "22.9MiB/22.9MiB" in err  # 3,000,000 float64 and the group's few bytes
    hibernate.load(tmp_path / "p.hib", {}, progress=True)
    assert "hibernate: loading" in capsys.readouterr().err


def test_progress_off_prints_nothing(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(_progress, "DELAY", 0.0)
    hibernate.save(tmp_path / "p.hib", {"a": np.zeros(3_000_000)}, progress=False)
    hibernate.load(tmp_path / "p.hib", {}, progress=False)
    assert capsys.readouterr().err == ""


def test_fast_operations_stay_quiet_by_default(tmp_path: Path, capsys) -> None:
    hibernate.save(tmp_path / "p.hib", {"a": 1}, progress=True)   # well under a second
    assert capsys.readouterr().err == ""
